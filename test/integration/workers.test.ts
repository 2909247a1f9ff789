// `workers: N` (issue #16) with the real CLI: two workers on one port, one probe stream, config
// and CLI errors. Each test keeps its load small (2 cores shared by many); the other workers-*
// files: crashes, reloads and drain; limits; TLS and DNS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, status, until, yaml } from '../helpers/workers.js';
import { runCli } from '../helpers/cli.js';
import { formatIssues, loadConfigObject } from '../../src/config/index.js';
import { restartDelay } from '../../src/server/workers/primary.js';
import { cgroupCpus, parseWorkers, workerCount } from '../../src/server/workers/count.js';

test('two workers serve one port: each takes connections, log lines name their worker', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'routes: [{ upstream: app }]\nlog: { access_log: true }\n'));
  // A new connection per request: round-robin hands them to the workers in turn.
  for (let i = 0; i < 10; i++) assert.equal((await request(`${s.url}/x`)).status, 200);
  const st = await status(s.admin);
  const pids = new Set(st.workers.map((w) => w.pid));
  assert.equal(pids.size, 2);
  assert.ok(!pids.has(s.cli.child.pid!), 'the primary is not a worker');
  for (const w of st.workers) assert.ok((w.connections ?? 0) > 0, `worker ${w.id} took no connection: ${JSON.stringify(st.workers)}`);
  assert.equal(st.requests, 10);
  // Access-log lines (one per request) carry the worker's number; the primary's lines say primary.
  const access = await s.cli.until(() => {
    const l = s.cli.logs().filter((x) => x.status === 200);
    return l.length >= 10 ? l : undefined;
  }, 'ten access-log lines');
  assert.deepEqual(new Set(access.map((l) => l.worker)), new Set([1, 2]));
  assert.ok(s.cli.messages(/^usher started$/).every((l) => l.worker === 'primary'));
  // An admin drain reaches every worker: a drained server takes nothing, in either of them.
  const server = encodeURIComponent(up.url);
  assert.equal((await request(`${s.admin}/upstreams/app/servers/${server}/drain`, { method: 'POST' })).status, 200);
  await until('both workers to drain the server', async () => {
    const replies = await Promise.all([1, 2, 3, 4].map(() => request(`${s.url}/x`)));
    return replies.every((r) => r.status === 503) ? true : undefined;
  });
  assert.equal((await request(`${s.admin}/upstreams/app/servers/${server}/enable`, { method: 'POST' })).status, 200);
  await until('both workers to take the server back', async () => {
    const replies = await Promise.all([1, 2, 3, 4].map(() => request(`${s.url}/x`)));
    return replies.every((r) => r.status === 200) ? true : undefined;
  });
});

test('the upstream sees one probe stream, not one per worker; a server found down is down in every worker', LIMIT, async (t) => {
  let healthy = true;
  const up = await startUpstream('app', (req, res) => {
    if (req.url === '/health') res.writeHead(healthy ? 200 : 503).end();
    else res.end('app');
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), '    health_check: { path: /health, interval: 200ms, rise: 1, fall: 1 }\nroutes: [{ upstream: app }]\n'));
  const probes = () => up.requests.filter((r) => r.url === '/health').length;
  // Each worker counts the probe results it was given (usher_health_checks_total{worker}).
  const perWorker = async (name: string): Promise<number[]> => {
    const text = (await request(`${s.admin}/metrics`)).body;
    const per = new Map<string, number>();
    for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)`, 'gm'))) {
      const w = /worker="(\d+)"/.exec(m[1]!)![1]!;
      per.set(w, (per.get(w) ?? 0) + Number(m[2]));
    }
    return [...per.values()];
  };
  const applied = () => perWorker('usher_health_checks_total');
  const counts = await until('each worker to have applied 5 probe results', async () => {
    const a = await applied();
    return a.length === 2 && a.every((n) => n >= 5) ? a : undefined;
  });
  // Read after the workers' counts: every probe they applied had reached the upstream before.
  // With a prober per worker the upstream would have seen about twice the most any worker applied.
  const seen = probes();
  assert.ok(seen <= Math.max(...counts) + 2, `upstream saw ${seen} probes; workers applied ${counts.join(', ')}`);
  healthy = false;
  await until('the server down in both workers (usher_upstream_server_up)', async () => {
    const up = await perWorker('usher_upstream_server_up');
    return up.length === 2 && up.every((n) => n === 0) ? true : undefined;
  });
});

test('workers: the count of auto, the replacement backoff, --workers', () => {
  assert.equal(workerCount(3), 3);
  assert.equal(workerCount('auto', 8, undefined), 8);
  assert.equal(workerCount('auto', 64, 2), 2, 'a cgroup quota of 2 CPUs caps auto');
  assert.equal(cgroupCpus(() => '150000 100000\n'), 2);
  assert.equal(cgroupCpus(() => 'max 100000\n'), undefined);
  assert.equal(cgroupCpus(() => {
    throw new Error('ENOENT');
  }), undefined);
  assert.deepEqual([0, 1, 2, 3, 20].map(restartDelay), [100, 200, 400, 800, 30_000]);
  assert.equal(parseWorkers('auto'), 'auto');
  assert.equal(parseWorkers('4'), 4);
  for (const bad of ['0', '-1', 'two', '1.5', '300']) assert.equal(parseWorkers(bad), undefined, bad);
});

test('workers: a bad value is a config error with its path; --workers takes auto or a number', LIMIT, async () => {
  const errors = (workers: unknown) => {
    const r = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], workers }, 'usher.yaml');
    return formatIssues(r.ok ? [] : r.errors);
  };
  assert.equal(errors(0), 'usher.yaml: error: workers: expected a whole number of at least 1, got 0');
  assert.equal(errors(300), 'usher.yaml: error: workers: expected a whole number of at most 256, got 300');
  assert.equal(errors('many'), 'usher.yaml: error: workers: expected "auto", got "many"');
  const ok = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }] }, 'usher.yaml');
  assert.ok(ok.ok && ok.config.workers === 'auto', 'a file config defaults to auto');
  const bad = await runCli(['serve', '--workers', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--workers takes "auto" or a number from 1 to 256, got "lots"/);
});
