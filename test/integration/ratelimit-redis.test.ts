// Rate limits shared through a real redis-server (started here, no persistence): two usher
// instances hold one combined rate; Redis slow (SIGSTOP) and killed (SIGKILL): fail_open lets
// requests through (with its local fallback where configured), fail_closed answers 503
// rate_limit_unavailable, and no request waits much longer than the store's timeout; Redis
// restarted: ioredis reconnects and sharing resumes. Building a runtime opens no connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, type Reply } from '../helpers/client.js';
import { fire } from '../helpers/load.js';
import { startRedis } from '../helpers/redis.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';
import { Runtime } from '../../src/server/runtime.js';

// Generous: under a loaded test run the event loop lags, and a timer that fires late wins over a reply that came in time.
const TIMEOUT_MS = 1000;
/** A correctness bound, not a benchmark: the timeout plus a generous margin for a loaded machine. */

function settings(redisUrl: string, upstreamUrl: string) {
  return {
    log: { level: 'info', access_log: true },
    upstreams: { app: { servers: [upstreamUrl] } },
    rate_limits: {
      stores: { shared: { redis: { url: redisUrl, timeout: TIMEOUT_MS } } },
      policies: {
        // 1 per hour: nothing refills during the test, so the counts are exact.
        together: { rate: 1, per: '1h', burst: 100, store: 'shared' },
        open: { rate: 1, per: '1h', burst: 1000000, store: 'shared', on_store_error: 'fail_open' },
        closed: { rate: 1, per: '1h', burst: 1000000, store: 'shared', on_store_error: 'fail_closed' },
        fallback: { rate: 1, per: '1h', burst: 1000000, store: 'shared', fallback: { rate: 1, per: '1h', burst: 5 } },
      },
    },
    routes: [
      { match: { path: { prefix: '/together' } }, upstream: 'app', rate_limits: ['together'] },
      { match: { path: { prefix: '/open' } }, upstream: 'app', rate_limits: ['open'] },
      { match: { path: { prefix: '/closed' } }, upstream: 'app', rate_limits: ['closed'] },
      { match: { path: { prefix: '/fallback' } }, upstream: 'app', rate_limits: ['fallback'] },
    ],
  };
}

const store = (u: TestUsher) => u.usher.runtime.rateLimits.stores.get('shared')!;

/** `n` requests alternating between the two ushers, `parallel` at a time on each. */
async function both(a: TestUsher, b: TestUsher, path: string, n: number): Promise<Reply[]> {
  const [x, y] = await Promise.all([fire(`${a.url}${path}`, Math.ceil(n / 2), 8), fire(`${b.url}${path}`, Math.floor(n / 2), 8)]);
  return [...x, ...y];
}

/** Each request timed: none may wait longer than the bound. */
async function timed(url: string, n: number): Promise<{ replies: Reply[]; slowest: number }> {
  let slowest = 0;
  const replies = await Promise.all(
    Array.from({ length: n }, async () => {
      const t0 = performance.now();
      const r = await request(url);
      slowest = Math.max(slowest, performance.now() - t0);
      return r;
    }),
  );
  return { replies, slowest };
}

test('two ushers on one Redis hold one combined rate; Redis slow, killed, restarted', async (t) => {
  const redis = await startRedis();
  const up = await startUpstream('app');
  const cfg = settings(redis.url, up.url);
  // Pure: building a runtime (usher validate / explain, a reload before it commits) connects to nothing.
  const built = Runtime.build(config(cfg)).runtime;
  assert.equal(built.rateLimits.stores.get('shared')!.started, false);
  const a = await startUsher(cfg);
  const b = await startUsher(cfg);
  t.after(async () => {
    redis.resume();
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  });
  await waitFor(() => store(a).reachable && store(b).reachable, 10_000, 'both ushers connected to Redis');

  // Shared: 300 requests over both instances, 100 allowed in all (each alone would allow 100).
  const shared = await both(a, b, '/together', 300);
  const ok = shared.filter((r) => r.status === 200);
  assert.equal(ok.length, 100);
  assert.equal(shared.filter((r) => r.status === 429 && r.headers['retry-after'] !== undefined).length, 200);
  const remaining = ok.map((r) => Number(/;r=(\d+);/.exec(String(r.headers.ratelimit))![1])).sort((x, y) => y - x);
  assert.deepEqual(remaining, Array.from({ length: 100 }, (_, i) => 99 - i), 'one counter: each remaining value once across both');
  assert.ok(a.usher.runtime.rateLimits.get('together')!.stats.allowed > 0 && b.usher.runtime.rateLimits.get('together')!.stats.allowed > 0);

  // Slow: Redis stops answering. Each request waits at most about the timeout, then fails over.
  redis.pause();
  const slowOpen = await timed(`${a.url}/open`, 20);
  const slowClosed = await timed(`${a.url}/closed`, 20);
  assert.ok(slowOpen.replies.every((r) => r.status === 200));
  assert.ok(slowClosed.replies.every((r) => r.status === 503 && r.body.includes('rate limit store unavailable')));
  // No wall-clock bound (the machine may be loaded): that every reply came while Redis is paused
  // is what the store's timeout guarantees; without it the requests would wait for Redis.
  redis.resume();

  // Killed: fail_open passes, fail_closed refuses (503 rate_limit_unavailable), the fallback limits locally.
  await redis.kill();
  await waitFor(() => !store(a).reachable && !store(b).reachable, 10_000, 'both ushers saw Redis go');
  const open = await timed(`${a.url}/open`, 200);
  const closed = await timed(`${b.url}/closed`, 200);
  const fallback = await fire(`${a.url}/fallback`, 50, 4);
  assert.ok(open.replies.every((r) => r.status === 200));
  assert.ok(closed.replies.every((r) => r.status === 503));
  assert.equal(fallback.filter((r) => r.status === 200).length, 5, 'the local fallback: its burst of 5');
  assert.equal(fallback.filter((r) => r.status === 429).length, 45);
  await waitFor(() => b.access.filter((l) => l.reason === 'rate_limit_unavailable' && l.status === 503).length >= 200);
  assert.ok(a.logs.some((l) => l.msg === 'rate-limit store unreachable: its policies apply on_store_error; reconnecting with backoff' && l.level === 40));

  // Restarted (empty): both reconnect by themselves, and share again.
  await redis.restart();
  await waitFor(() => store(a).reachable && store(b).reachable, 15_000, 'both ushers reconnected');
  assert.ok(a.logs.some((l) => l.msg === 'rate-limit store reachable again: shared limits resume'));
  assert.equal((await request(`${b.url}/closed`)).status, 200);
  const again = await both(a, b, '/together', 300);
  assert.equal(again.filter((r) => r.status === 200).length, 100, 'one combined rate again');
});

test('a reload keeps the Redis client of an unchanged store; a changed store gets a new one and the old one closes', async (t) => {
  const redis = await startRedis();
  const up = await startUpstream('app');
  const cfg = settings(redis.url, up.url);
  const u = await startUsher(cfg);
  t.after(async () => {
    await u.close();
    await up.close();
    await redis.close();
  });
  await waitFor(() => store(u).reachable, 10_000);
  const first = store(u);
  await u.usher.reload(config({ ...cfg, routes: cfg.routes.slice(0, 2) }));
  assert.equal(store(u), first, 'same client');
  const changed = structuredClone(cfg);
  changed.rate_limits.stores.shared.redis.timeout = 200;
  await u.usher.reload(config(changed));
  assert.notEqual(store(u), first);
  await waitFor(() => store(u).reachable && !first.started, 10_000, 'new client up, old closed');
  assert.equal((await request(`${u.url}/together`)).status, 200);
});
