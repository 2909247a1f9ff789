// The shared L2 (issue #16) and purges across instances (issue #12): two ushers in front of one
// origin share a real redis-server (started here, no persistence). B answers from the L2 what A
// stored (the origin sees one request) and keeps it in memory; a response larger than the L2's
// max_object_size stays A's alone; a route PURGE, an admin purge by tag and by prefix and a §4.4
// invalidation on A reach B's memory through the store's channel. Redis silent: a lookup is a
// miss after the timeout. Redis killed: both keep
// answering (origin, memory), never an error, and log it once; Redis back: the L2 is used again.
// Building a runtime opens no connection, and a store without l2 has none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin } from '../helpers/admin.js';
import { request, type Reply } from '../helpers/client.js';
import { startRedis } from '../helpers/redis.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';
import { Runtime } from '../../src/server/runtime.js';
import { LIMIT, start, until, yaml } from '../helpers/workers.js';
import { Redis } from 'ioredis';

const TOKEN = 'l2-test-token-0123456789abcdef';
// Generous: on a loaded machine a lookup that took longer than the timeout would be a miss (and the test would see the origin twice).
const TIMEOUT = '2s';

function settings(redisUrl: string, upstreamUrl: string) {
  return {
    log: { level: 'info', access_log: true },
    admin: { address: '127.0.0.1:0', token: TOKEN },
    upstreams: { app: { servers: [upstreamUrl] } },
    caches: {
      shared: { max_size: '1mb', l2: { redis: redisUrl, timeout: TIMEOUT, max_object_size: '2kb' } },
      local: { max_size: '1mb' },
    },
    routes: [
      { match: { path: '/local/' }, upstream: 'app', cache: 'local' },
      { upstream: 'app', cache: { store: 'shared', purge: { allow: ['127.0.0.1', '::1'] } } },
    ],
  };
}

const l2 = (u: TestUsher) => u.usher.runtime.caches.get('shared')!.l2!;
const mem = (u: TestUsher) => u.usher.runtime.caches.get('shared')!;
const key = (path: string) => `http://site.test${path}`;
const get = (u: TestUsher, path: string, method = 'GET'): Promise<Reply> => request(`${u.url}${path}`, { method, headers: { host: 'site.test' } });
const status = (r: Reply) => String(r.headers['cache-status']);
const purge = (u: TestUsher, body: unknown) => admin(u, 'POST', '/cache/purge', { body: JSON.stringify(body), token: TOKEN });

test('two ushers share an L2: B serves what A stored, purges on A reach B, Redis killed and back', async (t) => {
  const redis = await startRedis();
  const counts = new Map<string, number>();
  const up = await startUpstream('origin', (req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    req.resume();
    const tag = path.startsWith('/tagged/') ? { 'cache-tag': `t-${path.slice(8)}` } : {};
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', etag: `"${path}-${counts.get(path)}"`, ...tag });
    res.end(path.startsWith('/big') ? 'x'.repeat(4096) : `${path} #${counts.get(path)}`);
  });
  const cfg = settings(redis.url, up.url);
  // Pure: building a runtime (validate, explain, a reload before it commits) connects to nothing; a store without l2 has none.
  const built = Runtime.build(config(cfg)).runtime;
  assert.equal(built.caches.get('shared')!.l2!.started, false);
  assert.equal(built.caches.get('local')!.l2, undefined);
  const a = await startUsher(cfg);
  const b = await startUsher(cfg);
  t.after(async () => {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  });
  await waitFor(() => l2(a).reachable && l2(b).reachable && l2(a).subscribed && l2(b).subscribed, 10_000, 'both ushers connected to Redis');
  assert.ok(a.logs.some((l) => l.msg === 'cache l2 connected'));

  // A fills; B finds it in the L2 (detail="l2"), the origin saw one request; then B has it in memory.
  const first = await get(a, '/one');
  assert.equal(first.status, 200);
  assert.match(status(first), /fwd=uri-miss; stored/);
  await waitFor(() => l2(a).stats.writes >= 1, 5000, 'A wrote /one to the L2');
  const fromL2 = await get(b, '/one');
  assert.equal(fromL2.status, 200);
  assert.equal(fromL2.body, '/one #1');
  assert.match(status(fromL2), /^usher; hit; ttl=\d+; detail="l2"$/);
  assert.equal(fromL2.headers.etag, '"/one-1"');
  assert.ok(Number(fromL2.headers.age) >= 0);
  assert.equal(counts.get('/one'), 1, 'the origin saw /one once');
  assert.equal(l2(b).stats.hits, 1);
  const fromMemory = await get(b, '/one');
  assert.match(status(fromMemory), /^usher; hit; ttl=\d+$/, 'then from B\'s memory');
  assert.equal(l2(b).stats.hits, 1);
  assert.equal(counts.get('/one'), 1);

  // Larger than the L2's max_object_size (2kb): stored in A's memory only.
  await get(a, '/big');
  assert.match(status(await get(a, '/big')), /hit/);
  const big = await get(b, '/big');
  assert.match(status(big), /fwd=uri-miss; stored/);
  assert.equal(big.body.length, 4096);
  assert.equal(counts.get('/big'), 2);

  // A route PURGE on A: gone from A, from Redis and, through the channel, from B's memory.
  assert.ok(mem(b).get(key('/one')) !== undefined);
  const purged = await get(a, '/one', 'PURGE');
  assert.equal(purged.status, 200);
  assert.deepEqual(JSON.parse(purged.body), { purged: 1 });
  await waitFor(() => mem(b).get(key('/one')) === undefined, 5000, 'the PURGE reached B');
  const after = await get(b, '/one');
  assert.match(status(after), /fwd=uri-miss; stored/, 'not from the L2 either');
  assert.equal(after.body, '/one #2');
  assert.equal(counts.get('/one'), 2);

  // Admin purges on A by tag and by prefix reach B.
  for (const p of ['/tagged/1', '/tagged/2', '/tree/x', '/tree/y', '/other']) {
    const w0 = l2(a).stats.writes;
    await get(a, p);
    await waitFor(() => l2(a).stats.writes > w0, 5000, `A wrote ${p}`);
    assert.match(status(await get(b, p)), /detail="l2"/, `B: ${p} from the L2`);
    assert.equal(counts.get(p), 1);
  }
  const byTag = await purge(a, { tag: 't-1' });
  assert.equal(byTag.status, 200);
  assert.equal(JSON.parse(byTag.body).purged, 1);
  await waitFor(() => mem(b).get(key('/tagged/1')) === undefined, 5000, 'the tag purge reached B');
  assert.ok(mem(b).get(key('/tagged/2')) !== undefined, 'another tag stays');
  const byPrefix = await purge(a, { prefix: 'http://site.test/tree/' });
  assert.equal(JSON.parse(byPrefix.body).purged, 2);
  await waitFor(() => mem(b).get(key('/tree/x')) === undefined && mem(b).get(key('/tree/y')) === undefined, 5000, 'the prefix purge reached B');
  assert.ok(mem(b).get(key('/other')) !== undefined, 'outside the prefix stays');
  // Deleted in Redis too: B's next request for a purged key is not an L2 hit.
  const treeCount = counts.get('/tree/x')!;
  assert.match(status(await get(b, '/tree/x')), /fwd=uri-miss; stored/);
  assert.equal(counts.get('/tree/x'), treeCount + 1);

  // §4.4: a successful POST on A invalidates the URI on B too.
  assert.ok(mem(b).get(key('/other')) !== undefined);
  assert.equal((await get(a, '/other', 'POST')).status, 200);
  await waitFor(() => mem(b).get(key('/other')) === undefined, 5000, 'the invalidation reached B');
  // Deleted in Redis too: B's next GET goes to the origin, not to the L2.
  const otherCount = counts.get('/other')!;
  assert.match(status(await get(b, '/other')), /fwd=uri-miss; stored/);
  assert.equal(counts.get('/other'), otherCount + 1);

  // Redis silent (SIGSTOP): a lookup waits at most the timeout, then it is a miss and the origin answers.
  redis.pause();
  const e0 = l2(b).stats.errors;
  const slow = await get(b, '/slow');
  redis.resume();
  assert.equal(slow.status, 200);
  assert.match(status(slow), /fwd=uri-miss; stored/);
  assert.equal(counts.get('/slow'), 1);
  assert.ok(l2(b).stats.errors > e0, 'the timed-out lookup counted as an error');
  await waitFor(() => l2(a).reachable && l2(b).reachable, 15_000, 'both ushers reachable after the pause');

  // Redis killed: both keep answering, from the origin and their memory; the change logged once each.
  const unreachable = (u: TestUsher) => u.logs.filter((l) => l.msg === 'cache l2 unreachable: the store serves from memory only; reconnecting with backoff');
  const [ua, ub] = [unreachable(a).length, unreachable(b).length];
  await redis.kill();
  await waitFor(() => !l2(a).reachable && !l2(b).reachable, 10_000, 'both ushers saw Redis go');
  const down = [await get(a, '/down'), await get(a, '/down'), await get(b, '/down'), await get(b, '/one'), await get(b, '/down')];
  assert.deepEqual(
    down.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  assert.match(status(down[0]!), /fwd=uri-miss; stored/);
  assert.match(status(down[1]!), /^usher; hit/);
  assert.match(status(down[2]!), /fwd=uri-miss; stored/, 'B: no L2, so the origin');
  assert.match(status(down[4]!), /^usher; hit/, 'then B\'s memory');
  assert.equal(counts.get('/down'), 2);
  // A purge while Redis is down still purges this instance.
  assert.equal(JSON.parse((await get(a, '/down', 'PURGE')).body).purged, 1);
  assert.equal(unreachable(a).length, ua + 1);
  assert.equal(unreachable(b).length, ub + 1);
  assert.equal(unreachable(a).at(-1)!.level, 40);

  // Redis back (empty): both reconnect by themselves and the L2 is used again.
  await redis.restart();
  await waitFor(() => l2(a).reachable && l2(b).reachable && l2(a).subscribed && l2(b).subscribed, 15_000, 'both ushers reconnected and subscribed again');
  assert.ok(a.logs.some((l) => l.msg === 'cache l2 reachable again: shared entries and purges resume'));
  const w = l2(a).stats.writes;
  assert.match(status(await get(a, '/again')), /stored/);
  await waitFor(() => l2(a).stats.writes > w, 5000, 'A wrote /again');
  const again = await get(b, '/again');
  assert.match(status(again), /detail="l2"/);
  assert.equal(counts.get('/again'), 1);
  // The subscriptions came back too: a purge on B reaches A.
  await waitFor(() => mem(a).get(key('/again')) !== undefined);
  assert.equal((await get(b, '/again', 'PURGE')).status, 200);
  await waitFor(() => mem(a).get(key('/again')) === undefined, 10_000, 'the purge on B reached A after the restart');

  // The metrics.
  const m = await admin(a, 'GET', '/metrics', { token: TOKEN });
  assert.match(m.body, /usher_cache_l2_writes_total\{store="shared"\} [1-9]/);
  assert.match(m.body, /usher_cache_l2_misses_total\{store="shared"\} [1-9]/);
  assert.doesNotMatch(m.body, /usher_cache_l2_hits_total\{store="local"\}/);
});

test('a reload keeps a store with an unchanged l2 (its memory and its client); a changed l2 is a new store, and the old client closes once it is live', async (t) => {
  const redis = await startRedis();
  const up = await startUpstream('origin', (req, res) => {
    req.resume();
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end('x');
  });
  const cfg = settings(redis.url, up.url);
  const u = await startUsher(cfg);
  t.after(async () => {
    await u.close();
    await up.close();
    await redis.close();
  });
  await waitFor(() => l2(u).reachable, 10_000);
  await get(u, '/kept');
  const first = l2(u);
  await u.usher.reload(config({ ...cfg, routes: [...cfg.routes] }));
  assert.equal(l2(u), first, 'same L2 client');
  assert.match(status(await get(u, '/kept')), /^usher; hit; ttl=\d+$/, 'same memory');
  const changed = structuredClone(cfg);
  (changed.caches.shared.l2 as Record<string, unknown>).prefix = 'other:';
  await u.usher.reload(config(changed));
  assert.notEqual(l2(u), first);
  await waitFor(() => l2(u).reachable && !first.started, 10_000, 'new client up, old closed');
  // The new prefix: nothing of the old one's entries.
  assert.match(status(await get(u, '/kept')), /fwd=uri-miss; stored/);
});

test('two worker processes share the L2: one fills, the other answers from Redis (the origin sees one request)', LIMIT, async (t) => {
  const redis = await startRedis();
  let fetched = 0;
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end(`v${++fetched}`);
  });
  t.after(async () => {
    await up.close();
    await redis.close();
  });
  const s = await start(t, yaml(JSON.stringify(up.url), `log: { level: info }\ncaches: { mem: { max_size: 1mb, l2: { redis: "${redis.url}", timeout: ${JSON.stringify(TIMEOUT)} } } }\nroutes: [{ upstream: app, cache: mem }]\n`));
  const out = () => s.cli.stdout + s.cli.stderr;
  await until('both workers connected to Redis', () => Promise.resolve(out().split('cache l2 connected').length - 1 >= 2 ? true : undefined));
  // A new connection per request: round-robin hands them to the workers in turn.
  const first = await request(`${s.url}/page`);
  assert.match(status(first), /fwd=uri-miss; stored/);
  // The write is in the background: wait until Redis holds it (looked at directly).
  const direct = new Redis(redis.url);
  t.after(() => direct.disconnect());
  await until('the entry in Redis', async () => ((await direct.keys('usher:cache:mem:e:*')).length === 1 ? true : undefined));
  const seen = await until('the other worker to answer from the L2', async () => {
    const r = await request(`${s.url}/page`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'v1');
    return /detail="l2"/.test(status(r)) ? r : undefined;
  });
  assert.match(status(seen), /^usher; hit; ttl=\d+; detail="l2"$/);
  assert.equal(fetched, 1, 'the origin saw /page once for both workers');
});
