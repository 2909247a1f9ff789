// Workers: the admin API's purge, reopen-logs and certificates act on what the worker processes
// hold (their cache stores, their access log files, their listeners' certificates), not on the
// primary's (it has none of these); SIGUSR1 to the primary reaches the workers too; /status
// sums their access log and span counts; an unsafe method's cache invalidation reaches every
// worker as a purge does.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { certDir } from '../helpers/certs.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startOtlpReceiver } from '../helpers/otlp.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, until, yaml } from '../helpers/workers.js';

const hit = (r: { headers: Record<string, unknown> }) => /^usher; hit/.test(String(r.headers['cache-status']));

test('a purge through the admin API, usher purge or a route\'s PURGE reaches every worker: neither serves the purged response from its cache', LIMIT, async (t) => {
  // Each fetch of /page gets a new body: a body seen as a hit names the store (the worker) that holds it.
  let fetched = 0;
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end(`v${++fetched}`);
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'caches: { mem: { max_size: 1mb } }\nroutes: [{ upstream: app, cache: { store: mem, purge: { allow: [127.0.0.1] } } }]\n'));
  // A new connection per request: round-robin hands them to the workers in turn, until both
  // serve /page from their own store (two distinct bodies, each a hit).
  const cachedIn = async (): Promise<Set<string>> => {
    const bodies = new Set<string>();
    await until('both workers to serve /page from their cache', async () => {
      const r = await request(`${s.url}/page`);
      assert.equal(r.status, 200);
      if (hit(r)) bodies.add(r.body);
      return bodies.size === 2 ? true : undefined;
    });
    return bodies;
  };
  const before = await cachedIn();
  assert.equal(fetched, 2, 'each worker fetched /page once');

  const r = await request(`${s.admin}/cache/purge`, { method: 'POST', body: JSON.stringify({ url: `${s.url}/page` }) });
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { purged: number; stores: Record<string, number>; workers: { id: number; purged: number }[] };
  assert.equal(body.purged, 2);
  assert.deepEqual(body.stores, { mem: 2 });
  assert.deepEqual(body.workers.map((w) => [w.id, w.purged]).sort(), [[1, 1], [2, 1]]);

  // After the purge, neither worker answers with what it held: each fetches again, then stores the new body.
  const after = await cachedIn();
  for (const b of after) assert.ok(!before.has(b), `${b} was purged, yet served from a cache`);
  assert.equal(fetched, 4);

  // A route's PURGE reaches one worker (its connection's): that one has the primary ask them all.
  const p = await request(`${s.url}/page`, { method: 'PURGE' });
  assert.equal(p.status, 200, p.body);
  assert.deepEqual(JSON.parse(p.body), { purged: 2 });
  const third = await cachedIn();
  for (const b of third) assert.ok(!after.has(b), `${b} was purged by PURGE, yet served from a cache`);
  assert.equal(fetched, 6);

  // usher purge goes through the same endpoint: it prints the sum over the workers.
  const cli = await runCli(['purge', '--url', `${s.url}/page`, '--admin', s.admin]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^purged 2 stored responses \(mem: 2\)$/m);
  // A store no worker has: refused as in a single process.
  const none = await request(`${s.admin}/cache/purge`, { method: 'POST', body: JSON.stringify({ url: `${s.url}/page`, store: 'nope' }) });
  assert.equal(none.status, 404);
  assert.match(none.body, /no cache store named \\"nope\\" \(stores: mem\)/);
});

test('with workers, an unsafe method\'s success invalidates its URI and Location in every worker (RFC 9111 §4.4), not in the one it reached only', LIMIT, async (t) => {
  // Each fetch gets a new body: a body seen as a hit names the worker's store that holds it.
  const fetched = new Map<string, number>();
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    if (req.method === 'POST') return void res.writeHead(201, { 'content-type': 'text/plain', location: '/other' }).end('created');
    const n = (fetched.get(req.url!) ?? 0) + 1;
    fetched.set(req.url!, n);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end(`${req.url} v${n}`);
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'caches: { mem: { max_size: 1mb } }\nroutes: [{ upstream: app, cache: { store: mem } }]\n'));
  // New connections until both workers serve `path` from their own store (two distinct bodies, each a hit).
  const cachedIn = async (path: string): Promise<Set<string>> => {
    const bodies = new Set<string>();
    await until(`both workers to serve ${path} from their cache`, async () => {
      const r = await request(`${s.url}${path}`);
      assert.equal(r.status, 200);
      if (hit(r)) bodies.add(r.body);
      return bodies.size === 2 ? true : undefined;
    });
    return bodies;
  };
  const before = { page: await cachedIn('/page'), other: await cachedIn('/other'), unrelated: await cachedIn('/unrelated') };
  assert.equal(fetched.get('/page'), 2, 'each worker fetched /page once');

  // The POST reaches one worker; its answer comes once the other worker invalidated too.
  const post = await request(`${s.url}/page`, { method: 'POST', body: 'new' });
  assert.equal(post.status, 201, post.body);
  const page = await cachedIn('/page');
  for (const b of page) assert.ok(!before.page.has(b), `${b} was invalidated by the POST, yet served from a worker's cache`);
  assert.equal(fetched.get('/page'), 4, 'both workers fetched /page again');
  const other = await cachedIn('/other');
  for (const b of other) assert.ok(!before.other.has(b), `${b} (the POST's Location) was invalidated, yet served from a worker's cache`);
  assert.equal(fetched.get('/other'), 4);
  // What the POST did not name stays in both.
  for (let i = 0; i < 4; i++) {
    const r = await request(`${s.url}/unrelated`);
    assert.ok(hit(r) && before.unrelated.has(r.body), `/unrelated stays cached: ${r.body} ${String(r.headers['cache-status'])}`);
  }
  assert.equal(fetched.get('/unrelated'), 2);
});

test('with workers, two workers write one disk store directory: every file is whole, no temp file is left, a restart reads them all', LIMIT, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    // 20 KiB per path, different per path.
    const body = Buffer.alloc(20 * 1024, req.url!);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'cache-control': 'max-age=600' }).end(body);
  });
  t.after(() => up.close());
  const dir = join(tempDir(t), 'cache');
  const s = await start(t, yaml(JSON.stringify(up.url), `caches: { d: { type: disk, path: ${JSON.stringify(dir)}, max_size: 64mb } }\nroutes: [{ upstream: app, cache: d }]\n`));
  // Each path twice at once, 10 paths at a time, new connections: round-robin gives both workers each path to store.
  const paths = Array.from({ length: 40 }, (_, i) => `/p/${i}`);
  for (let i = 0; i < paths.length; i += 10) {
    const batch = paths.slice(i, i + 10).flatMap((p) => [p, p]);
    for (const r of await Promise.all(batch.map((p) => request(`${s.url}${p}`)))) assert.equal(r.status, 200);
  }
  const { readdirSync } = await import('node:fs');
  const entries = () => readdirSync(dir).filter((d) => d !== 'tmp').flatMap((d) => readdirSync(join(dir, d)));
  // Stored once the files are renamed into place: wait for more than one copy of some (both workers wrote).
  await until('both workers to have stored copies', async () => (entries().length > paths.length ? true : undefined));
  // Every write is through (renamed into place or removed) before usher stops: none is left behind.
  const temps = () => readdirSync(join(dir, 'tmp')).flatMap((d) => readdirSync(join(dir, 'tmp', d)).map((f) => `${d}/${f}`));
  await until('the temp files to be renamed into place', async () => (temps().length === 0 ? true : undefined), 10_000).catch(() => assert.deepEqual(temps(), [], 'temp files left behind'));
  s.cli.signal('SIGTERM');
  assert.equal((await s.cli.waitForExit(30_000)).code, 0);
  const owners = readdirSync(join(dir, 'tmp'));
  assert.equal(owners.length, 2, `a temp directory per worker: ${owners.join(' ')}`);
  assert.deepEqual(temps(), [], 'no temp file left');
  const { DiskStore } = await import('../../src/cache/disk.js');
  const store = new DiskStore('d', dir, 64 * 1024 * 1024, 64 * 1024 * 1024, 'test');
  await store.start();
  assert.equal(store.diskStats.corrupt, 0, 'no torn or foreign file');
  assert.equal(store.keys, paths.length, 'every path, once (the older duplicate of each removed)');
  assert.deepEqual(readdirSync(join(dir, 'tmp')), ['test'], 'the exited workers\' temp directories are removed by the next start');
});

test('POST /reopen-logs and SIGUSR1 to the primary reopen the workers\' access log file', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const file = join(tempDir(t), 'access.log');
  const s = await start(t, yaml(JSON.stringify(up.url), `routes: [{ upstream: app }]\nlog: { access_log: true, access_log_format: json, access_log_file: ${JSON.stringify(file)} }\n`));
  // Whole lines only: a worker may be halfway through writing the last one when the test reads.
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(0, -1).filter((l) => l !== '').map((l) => JSON.parse(l) as { worker: number; path: string }) : []);
  // Requests until both workers have written a line of `path` to `f`.
  const bothWrite = (f: string, path: string) =>
    until(`both workers to write ${path} to ${f}`, async () => {
      assert.equal((await request(`${s.url}${path}`)).status, 200);
      const ids = new Set(lines(f).filter((l) => l.path === path).map((l) => l.worker));
      return ids.size === 2 ? true : undefined;
    });
  await bothWrite(file, '/one');

  renameSync(file, `${file}.1`);
  const r = await request(`${s.admin}/reopen-logs`, { method: 'POST' });
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { reopened: string[]; workers: { id: number; reopened: string[] }[] };
  assert.deepEqual(body.reopened, [file]);
  assert.deepEqual(body.workers.map((w) => [w.id, w.reopened]).sort(), [[1, [file]], [2, [file]]]);
  await bothWrite(file, '/two');
  // (A line still buffered at the rename may land in the new file: nothing is lost.)
  assert.ok(!lines(`${file}.1`).some((l) => l.path === '/two'), 'no worker wrote to the renamed file after the reopen');

  // Each worker logged its reopen once (the POST above); SIGUSR1 makes it twice.
  const reopens = (w: number) => s.cli.messages(/^log files reopened$/).filter((l) => l.worker === w).length;
  assert.deepEqual([reopens(1), reopens(2)], [1, 1]);
  renameSync(file, `${file}.2`);
  s.cli.signal('SIGUSR1');
  await s.cli.until(() => (reopens(1) === 2 && reopens(2) === 2 ? true : undefined), 'both workers to reopen on SIGUSR1');
  await bothWrite(file, '/three');
  assert.ok(!lines(`${file}.2`).some((l) => l.path === '/three'), 'no worker wrote to the file renamed before SIGUSR1 after it');
});

test('GET /certificates with workers lists the certificate files the workers\' listeners serve; so does the expiry metric, per worker', LIMIT, async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const site = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  const up = await startUpstream('app');
  t.after(() => up.close());
  const text = `listeners:\n  - { address: 127.0.0.1:0 }\n  - { address: 127.0.0.1:0, tls: { cert: ${JSON.stringify(site.certPath)}, key: ${JSON.stringify(site.keyPath)} } }\nadmin: { address: 127.0.0.1:0, metrics: true }\nupstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nroutes: [{ upstream: app }]\n`;
  const s = await start(t, text);
  const r = await request(`${s.admin}/certificates`);
  assert.equal(r.status, 200, r.body);
  const view = JSON.parse(r.body) as { certificates: { names: string[]; source: { type: string; cert: string }; listeners: string[]; default_on: string[] }[]; acme_pending: unknown[] };
  assert.equal(view.certificates.length, 1, r.body);
  const c = view.certificates[0]!;
  assert.deepEqual(c.names, ['site.test']);
  assert.deepEqual(c.source, { type: 'file', cert: site.certPath, key: site.keyPath });
  assert.deepEqual(c.listeners, ['127.0.0.1:0']);
  assert.deepEqual(c.default_on, ['127.0.0.1:0']);
  assert.deepEqual(view.acme_pending, []);
  assert.ok(!r.body.includes('PRIVATE KEY'), 'no key crosses to the admin API');

  const metrics = (await request(`${s.admin}/metrics`)).body;
  const series = [...metrics.matchAll(/^usher_tls_certificate_expiry_timestamp_seconds\{([^}]*)\} (\d+)/gm)];
  assert.deepEqual(series.map((m) => /worker="(\d+)"/.exec(m[1]!)![1]).sort(), ['1', '2'], metrics);
  for (const m of series) assert.match(m[1]!, /names="site\.test".*source="file"|source="file".*names="site\.test"/);
});

test('GET /status with workers: access_log and tracing are the sums over the workers (which write the lines and export the spans)', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const otlp = await startOtlpReceiver();
  t.after(() => otlp.close());
  const file = join(tempDir(t), 'access.log');
  const s = await start(
    t,
    yaml(JSON.stringify(up.url), `routes: [{ upstream: app }]\nlog: { access_log: true, access_log_format: json, access_log_file: ${JSON.stringify(file)} }\ntracing: { otlp: { endpoint: ${JSON.stringify(otlp.url)} }, flush_interval: 50ms }\n`),
  );
  // A new connection per request: round-robin hands them to both workers.
  for (let i = 0; i < 10; i++) assert.equal((await request(`${s.url}/x${i}`)).status, 200);
  type Counts = { access_log: { format: string; file: string; lines: number; dropped: number; errors: number }; tracing: { spans: { exported: number; failed: number; dropped: number; retried: number; queued: number } }; workers: { id: number; requests: number; access_log: { lines: number } | null; tracing: { exported: number } | null }[] };
  const st = await until('the lines and spans of all ten requests in /status', async () => {
    const r = JSON.parse((await request(`${s.admin}/status`)).body) as Counts;
    return r.access_log.lines === 10 && r.tracing.spans.exported === 20 ? r : undefined;
  });
  assert.deepEqual(st.access_log, { format: 'json', file, lines: 10, dropped: 0, errors: 0, sampled_out: 0 });
  assert.deepEqual(st.tracing.spans, { exported: 20, dropped: 0, failed: 0, retried: 0, queued: 0 });
  // Both workers wrote and exported some: the sums are not one worker's numbers.
  assert.equal(st.workers.length, 2);
  for (const w of st.workers) {
    assert.ok((w.access_log?.lines ?? 0) > 0 && (w.tracing?.exported ?? 0) > 0, JSON.stringify(st.workers));
    assert.equal(w.access_log!.lines, w.requests, `worker ${w.id}: a line per request`);
  }
  assert.equal(otlp.spans.length, 20, 'the receiver has them all');
  const written = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length : 0);
  await until('the ten lines in the file', async () => (written() === 10 ? true : undefined));
});
