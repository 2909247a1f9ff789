// Rate limits shared through Redis Sentinel and Redis Cluster, both real (Debian's redis-server
// in sentinel and cluster mode, started here on free ports in temp dirs, no persistence):
// two usher instances hold one combined rate through each. Sentinel: the master killed, the
// policies apply on_store_error while no master answers (fail_open passes, fail_closed refuses),
// the Sentinels promote the replica, usher follows them to it and sharing resumes, with the
// buckets the replica holds. Cluster: buckets keyed on a header land on different nodes (one key
// per script call: its node is its slot's), each key's limit held across both instances.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, type Reply } from '../helpers/client.js';
import { fire } from '../helpers/load.js';
import { redisCli, startRedisCluster, startRedisSentinel } from '../helpers/redis.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

// Generous: under a loaded test run the event loop lags (see ratelimit-redis.test.ts).
const TIMEOUT_MS = 1000;

const store = (u: TestUsher) => u.usher.runtime.rateLimits.stores.get('shared')!;

/** `n` requests split between the two ushers, 8 at a time on each. */
async function both(a: TestUsher, b: TestUsher, path: string, n: number, headers?: (i: number) => Record<string, string>): Promise<Reply[]> {
  const [x, y] = await Promise.all([fire(`${a.url}${path}`, Math.ceil(n / 2), 8, headers), fire(`${b.url}${path}`, Math.floor(n / 2), 8, headers)]);
  return [...x, ...y];
}

const remaining = (r: Reply) => Number(/;r=(\d+);/.exec(String(r.headers.ratelimit))![1]);

test('Sentinel: two ushers share one rate through the master; it dies, fail_open/fail_closed apply, the replica is promoted and sharing resumes', { timeout: 170_000 }, async (t) => {
  // down-after 2 s: the time between the master's death and the failover, in which the policies fall back.
  const sentinel = await startRedisSentinel({ count: 2, downAfterMs: 2000 });
  const up = await startUpstream('app');
  const cfg = {
    log: { level: 'info', access_log: true },
    upstreams: { app: { servers: [up.url] } },
    rate_limits: {
      stores: { shared: { redis: { sentinel: { name: sentinel.name, nodes: sentinel.nodes, password: sentinel.sentinelPassword }, password: sentinel.password, timeout: TIMEOUT_MS } } },
      policies: {
        // 1 per hour: nothing refills during the test, so the counts are exact.
        together: { rate: 1, per: '1h', burst: 100, store: 'shared' },
        after: { rate: 1, per: '1h', burst: 100, store: 'shared' },
        open: { rate: 1, per: '1h', burst: 1000000, store: 'shared', on_store_error: 'fail_open' },
        closed: { rate: 1, per: '1h', burst: 1000000, store: 'shared', on_store_error: 'fail_closed' },
      },
    },
    routes: ['together', 'after', 'open', 'closed'].map((p) => ({ match: { path: { prefix: `/${p}` } }, upstream: 'app', rate_limits: [p] })),
  };
  const a = await startUsher(cfg);
  const b = await startUsher(cfg);
  t.after(async () => {
    await a.close();
    await b.close();
    await up.close();
    await sentinel.close();
  });
  await waitFor(() => store(a).reachable && store(b).reachable, 30_000, 'both ushers connected to the master through the Sentinels');

  // Shared: 300 requests over both instances, 100 allowed in all, one counter.
  const shared = await both(a, b, '/together', 300);
  const ok = shared.filter((r) => r.status === 200);
  assert.equal(ok.length, 100);
  assert.equal(shared.filter((r) => r.status === 429).length, 200);
  assert.deepEqual(ok.map(remaining).sort((x, y) => y - x), Array.from({ length: 100 }, (_, i) => 99 - i), 'one counter: each remaining value once across both');
  assert.ok((await redisCli(sentinel.master.port, ['--scan', '--pattern', 'usher:rl:together*'], sentinel.password)).length > 0, 'the bucket is on the master');
  // The replica has every write before the master goes (replication is asynchronous otherwise).
  assert.equal(await redisCli(sentinel.master.port, ['wait', '1', '30000'], sentinel.password), '1');

  // The master dies. Until the Sentinels promote the replica, no Redis answers: fail_open
  // passes, fail_closed refuses. A request counts as "while down" when the store was unreachable
  // both before it was sent and after its reply (the failover may end during the loop).
  sentinel.master.proc!.kill('SIGKILL');
  await waitFor(() => !store(a).reachable && !store(b).reachable, 30_000, 'both ushers saw the master go');
  const down = { open: 0, closed: 0 };
  for (let i = 0; i < 40 && !store(a).reachable; i++) {
    for (const mode of ['open', 'closed'] as const) {
      const before = store(a).reachable;
      const r = await request(`${a.url}/${mode}`);
      if (before || store(a).reachable) continue;
      down[mode]++;
      if (mode === 'open') assert.equal(r.status, 200, 'fail_open lets the request through while no master answers');
      else assert.equal(r.status, 503, 'fail_closed refuses while no master answers');
    }
  }
  assert.ok(down.open > 0 && down.closed > 0, `requests were answered while the master was down (${JSON.stringify(down)})`);
  await waitFor(() => a.access.some((l) => l.reason === 'rate_limit_unavailable' && l.status === 503), 10_000, 'the 503 logged with its reason code');
  assert.ok(a.logs.some((l) => l.msg === 'rate-limit store unreachable: its policies apply on_store_error; reconnecting with backoff' && l.level === 40));

  // The Sentinels promote the replica; both ushers find it through them and share again.
  const promoted = async () => {
    const start = Date.now();
    while (Date.now() - start < 120_000) {
      if ((await sentinel.masterPort().catch(() => 0)) === sentinel.replica.port) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the Sentinels did not promote the replica');
  };
  await promoted();
  await waitFor(() => store(a).reachable && store(b).reachable, 120_000, 'both ushers connected to the promoted replica');
  assert.ok(a.logs.some((l) => l.msg === 'rate-limit store reachable again: shared limits resume'));
  assert.match(await redisCli(sentinel.replica.port, ['info', 'replication'], sentinel.password), /role:master/);
  // The bucket spent before the failover is still spent: the replica held it.
  const kept = await both(a, b, '/together', 20);
  assert.equal(kept.filter((r) => r.status === 200).length, 0, 'the spent bucket survived the failover');
  const after = await both(a, b, '/after', 300);
  assert.equal(after.filter((r) => r.status === 200).length, 100, 'one combined rate on the new master');
  assert.equal((await request(`${b.url}/closed`)).status, 200);
});

test('Cluster: buckets on several nodes, each key limited across two ushers', { timeout: 170_000 }, async (t) => {
  const cluster = await startRedisCluster(3);
  const up = await startUpstream('app');
  const cfg = {
    upstreams: { app: { servers: [up.url] } },
    rate_limits: {
      stores: { shared: { redis: { cluster: cluster.addresses, timeout: TIMEOUT_MS } } },
      policies: { per_user: { rate: 1, per: '1h', burst: 20, key: [{ header: 'x-user' }], store: 'shared', on_store_error: 'fail_closed' } },
    },
    routes: [{ upstream: 'app', rate_limits: ['per_user'] }],
  };
  const a = await startUsher(cfg);
  const b = await startUsher(cfg);
  t.after(async () => {
    await a.close();
    await b.close();
    await up.close();
    await cluster.close();
  });
  await waitFor(() => store(a).reachable && store(b).reachable, 30_000, 'both ushers connected to the cluster');

  // 12 users, 60 requests each, half through each usher: 20 allowed per user in all.
  const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
  const replies = await both(a, b, '/', users.length * 60, (i) => ({ 'x-user': users[i % users.length]! }));
  assert.equal(replies.filter((r) => r.status === 503).length, 0, 'every decision reached its node');
  for (const [i, user] of users.entries()) {
    const mine = replies.filter((_, j) => j % (users.length * 30) % users.length === i);
    assert.equal(mine.length, 60);
    const ok = mine.filter((r) => r.status === 200);
    assert.equal(ok.length, 20, `${user}: its burst across both ushers`);
    assert.deepEqual(ok.map(remaining).sort((x, y) => y - x), Array.from({ length: 20 }, (_, k) => 19 - k), `${user}: one counter`);
  }
  // One key per user, spread over the nodes by slot.
  const sizes = await cluster.sizes();
  assert.equal(sizes.reduce((x, y) => x + y, 0), users.length);
  assert.ok(sizes.filter((n) => n > 0).length >= 2, `keys on several nodes: ${sizes.join(', ')}`);
});
