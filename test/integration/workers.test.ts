// `workers: N` (issue #16 pt 1-3) with the real CLI: a primary and two worker processes on one
// port. Each test keeps its load small (the machine has 2 cores shared by many).
import assert from 'node:assert/strict';
import { Agent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, serve, tempDir, writeFile, type Serving } from '../helpers/cli.js';
import { formatIssues, loadConfigObject } from '../../src/config/index.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/usher.js';
import { connect as tlsConnect } from 'node:tls';
import { certDir } from '../helpers/certs.js';
import { startDns } from '../helpers/dns.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { restartDelay } from '../../src/server/workers/primary.js';
import { cgroupCpus, parseWorkers, workerCount } from '../../src/server/workers/count.js';

const LIMIT = { timeout: 240_000 };

interface Worker {
  id: number;
  pid: number | null;
  state: string;
  restarts: number;
  requests: number | null;
  connections: number | null;
  config_hash: string | null;
}

interface Status {
  config: { hash: string };
  requests: number;
  workers: Worker[];
}

/** `adminPort`: a reload names the admin listener's bound port to keep it (port 0 would open a new one). */
function yaml(upstream: string, extra = '', adminPort = 0): string {
  return `listeners: [{ address: 127.0.0.1:0 }]\nadmin: { address: 127.0.0.1:${adminPort} }\nupstreams:\n  app:\n    servers: [${upstream}]\n${extra}`;
}

/** usher serve --workers 2 with this config; the admin URL from the banner; every worker serving. */
async function start(t: { after(fn: () => Promise<void> | void): void }, text: string, workers = 2): Promise<Serving & { admin: string; file: string }> {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), text);
  const s = await serve(t, ['--config', file, '--workers', String(workers)]);
  const port = await s.cli.until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)?.[1], 'the admin banner line');
  const admin = `http://127.0.0.1:${port}`;
  const st = await status(admin);
  assert.equal(st.workers.length, workers);
  assert.ok(st.workers.every((w) => w.state === 'serving'), JSON.stringify(st.workers));
  return { ...s, admin, file };
}

async function status(admin: string): Promise<Status> {
  return JSON.parse((await request(`${admin}/status`)).body) as Status;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET with a bound: a request that hangs counts as failed (and is reported), it does not hang the test. */
function get(url: string, agent: Agent | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('error', reject).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')));
    req.on('error', reject);
  });
}

/** `loops` clients sending requests one after another until stop(); counts ok and failed. */
function load(url: string, loops: number, keepAlive: boolean): { ok: () => number; failures: string[]; bodies: Set<string>; stop: () => Promise<void> } {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const bodies = new Set<string>();
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: loops }) : undefined;
  const loop = async () => {
    while (running) {
      try {
        const r = await get(url, agent);
        if (r.status === 200) {
          ok++;
          bodies.add(r.body);
        } else failures.push(`${r.status} ${r.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const all = Promise.all(Array.from({ length: loops }, loop));
  return {
    ok: () => ok,
    failures,
    bodies,
    stop: async () => {
      running = false;
      await all;
      agent?.destroy();
    },
  };
}

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

test('kill -9 of a worker under load: only its in-flight requests fail, the other serves, and it is replaced', LIMIT, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    setTimeout(() => res.end('app'), 10);
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'routes: [{ upstream: app }]\n'));
  const before = await status(s.admin);
  const victim = before.workers[0]!;
  // Four clients, a new connection per request: a request fails only if it was on the victim.
  const l = load(`${s.url}/x`, 4, false);
  t.after(() => l.stop());
  await waitFor(() => l.ok() >= 20, 60_000, 'load before the kill');
  process.kill(victim.pid!, 'SIGKILL');
  const okAtKill = l.ok();
  const replaced = await until('the worker to be replaced', async () => {
    const w = (await status(s.admin)).workers.find((x) => x.id === victim.id)!;
    return w.state === 'serving' && w.pid !== victim.pid ? w : undefined;
  });
  assert.equal(replaced.restarts, 1);
  await waitFor(() => l.ok() >= okAtKill + 40, 60_000, 'load after the replacement');
  await l.stop();
  t.diagnostic(`failures: ${JSON.stringify(l.failures)}`);
  assert.ok(l.failures.length <= 4, `more failures than requests in flight on the killed worker: ${l.failures.join('; ')}`);
  // The replacement takes connections again.
  for (let i = 0; i < 6; i++) assert.equal((await request(`${s.url}/x`)).status, 200);
  const after = await status(s.admin);
  assert.ok((after.workers.find((w) => w.id === victim.id)!.connections ?? 0) > 0, JSON.stringify(after.workers));
  assert.equal(s.cli.messages(/worker died: replacing it/).length, 1);
});

test('reloads under load across workers: no request fails, every worker serves the new config', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const route = (n: number) => `routes:\n  - { match: { path: /v }, respond: { status: 200, body: "v${n}" } }\n  - { upstream: app }\n`;
  const s = await start(t, yaml(JSON.stringify(up.url), route(0)));
  const v = load(`${s.url}/v`, 2, true);
  const proxied = load(`${s.url}/x`, 2, true);
  t.after(() => Promise.all([v.stop(), proxied.stop()]).then(() => undefined));
  for (let n = 1; n <= 3; n++) {
    writeFile(s.file, yaml(JSON.stringify(up.url), route(n), Number(new URL(s.admin).port)));
    s.cli.signal('SIGHUP');
    await until(`reload ${n} in both workers`, async () => {
      const st = await status(s.admin);
      const seen = new Set(st.workers.map((w) => w.config_hash));
      return seen.size === 1 && seen.has(st.config.hash) && v.bodies.has(`v${n}`) ? true : undefined;
    });
  }
  await waitFor(() => v.ok() > 20 && proxied.ok() > 20, 60_000, 'load');
  await Promise.all([v.stop(), proxied.stop()]);
  assert.deepEqual([...v.failures, ...proxied.failures], []);
  assert.ok(v.bodies.has('v3'));
  assert.equal(s.cli.messages(/^config reloaded$/).filter((l) => l.worker === 'primary').length, 3);
  assert.equal(s.cli.messages(/^config reloaded$/).filter((l) => typeof l.worker === 'number').length, 6);
});

test('a local rate limit holds per usher instance: the workers share one bucket through the primary', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    few: { rate: 1, per: 1h, burst: 6 }\nroutes: [{ upstream: app, rate_limits: [few] }]\n'));
  const statuses: number[] = [];
  // New connections: the requests alternate between the two workers.
  for (let i = 0; i < 12; i++) statuses.push((await request(`${s.url}/x`)).status);
  assert.deepEqual(statuses, [...Array(6).fill(200), ...Array(6).fill(429)]);
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.requests ?? 0) > 0), 'both workers answered');
});

test('a concurrency limit holds per usher instance: the primary counts the slots of both workers', LIMIT, async (t) => {
  const held: (() => void)[] = [];
  const up = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push(() => res.end('done'));
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    two: { concurrency: 2 }\nroutes: [{ upstream: app, rate_limits: [two] }]\n'));
  // Four at once on new connections (two per worker): a count per worker would let all four through.
  const replies = Array.from({ length: 4 }, () => request(`${s.url}/x`));
  const refused = await Promise.race([Promise.all(replies), until('two refusals and two held upstream', async () => (held.length === 2 ? true : undefined))]);
  assert.equal(refused, true);
  const settled = Promise.all(replies);
  while (held.length > 0) held.shift()!();
  const statuses = (await settled).map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 429, 429]);
  assert.equal(up.requests.length, 2);
  // The slots came back: both workers take requests again.
  const again = Array.from({ length: 2 }, () => request(`${s.url}/y`));
  await until('two more upstream', async () => (held.length === 2 ? true : undefined));
  while (held.length > 0) held.shift()!();
  assert.deepEqual((await Promise.all(again)).map((r) => r.status), [200, 200]);
});

test('SIGTERM drains every worker: a request in flight completes, then all exit 0', LIMIT, async (t) => {
  const held: ((body: string) => void)[] = [];
  const up: TestUpstream = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push((b) => res.end(b));
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'routes: [{ upstream: app }]\n'));
  const pending = request(`${s.url}/slow`);
  await waitFor(() => held.length === 1, 10_000, 'the request upstream');
  const pids = (await status(s.admin)).workers.map((w) => w.pid!);
  s.cli.signal('SIGTERM');
  await s.cli.until(() => s.cli.messages(/worker shutting down/).length === 2, 'both workers draining');
  held[0]!('done');
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'done');
  const exit = await s.cli.waitForExit(20_000);
  assert.deepEqual(exit, { code: 0, signal: null });
  const stopped = s.cli.messages(/^stopped$/);
  assert.deepEqual(new Set(stopped.map((l) => l.worker)), new Set([1, 2, 'primary']));
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
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

test('a TLS certificate file replaced on disk: every worker serves the new one', LIMIT, async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const first = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  const up = await startUpstream('app');
  t.after(() => up.close());
  const text = `listeners:\n  - { address: 127.0.0.1:0 }\n  - { address: 127.0.0.1:0, tls: { cert: ${JSON.stringify(first.certPath)}, key: ${JSON.stringify(first.keyPath)} } }\nadmin: { address: 127.0.0.1:0 }\nupstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nroutes: [{ upstream: app }]\n`;
  const s = await start(t, text);
  const tlsPort = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)![1]);
  const served = () =>
    new Promise<string>((resolve, reject) => {
      const c = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'site.test', rejectUnauthorized: false }, () => {
        resolve(c.getPeerCertificate().fingerprint256);
        c.destroy();
      });
      c.on('error', reject);
    });
  // Six new connections: both workers serve the first certificate.
  const before = new Set(await Promise.all([1, 2, 3, 4, 5, 6].map(served)));
  assert.equal(before.size, 1);
  const second = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  assert.equal(second.certPath, first.certPath);
  await until('both workers to serve the new certificate', async () => {
    const now = new Set(await Promise.all([1, 2, 3, 4, 5, 6].map(served)));
    return now.size === 1 && !now.has([...before][0]!) ? true : undefined;
  });
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.connections ?? 0) > 0), `both workers answered handshakes: ${JSON.stringify(st.workers)}`);
});

test('DNS discovery runs in the primary: a changed answer reaches every worker', LIMIT, async (t) => {
  const on = async (host: string, port: number, name: string) => {
    const server = createServer((req, res) => {
      req.resume();
      res.end(name);
    });
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
    return (server.address() as AddressInfo).port;
  };
  const port = await on('127.0.0.1', 0, 'one');
  await on('127.0.0.2', port, 'two');
  const dns = await startDns({ 'api.test': ['127.0.0.1'] });
  t.after(() => dns.close());
  const s = await start(t, yaml(JSON.stringify(`http://api.test:${port}`), `    dns: { refresh: 200ms, family: ipv4, servers: [${JSON.stringify(dns.server)}] }\nroutes: [{ upstream: app }]\nlog: { level: info }\n`));
  const bodies = async () => new Set((await Promise.all([1, 2, 3, 4, 5, 6].map(() => request(`${s.url}/x`)))).map((r) => r.body));
  await until('both workers on the first answer', async () => ((await bodies()).has('one') && (await bodies()).size === 1 ? true : undefined));
  dns.records.set('api.test', ['127.0.0.2']);
  await until('both workers on the new answer', async () => {
    const b = await bodies();
    return b.size === 1 && b.has('two') ? true : undefined;
  });
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.requests ?? 0) > 0));
  // The workers apply what the primary resolved; only the primary logs a DNS change of its own cluster first.
  const changes = s.cli.messages(/^upstream servers changed \(DNS\)$/);
  assert.ok(changes.some((l) => l.worker === 'primary'), JSON.stringify(changes));
});
