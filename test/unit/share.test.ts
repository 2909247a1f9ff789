// Issue #16: an upstream's limits split over N workers so that they hold per usher instance.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigObject } from '../../src/config/index.js';
import type { UsherConfig } from '../../src/config/types.js';
import type { Waiter } from '../../src/upstream/admission.js';
import { Cluster } from '../../src/upstream/cluster.js';
import { limitsBelowWorkers, setWorkerPlace, shareAtLeastOne, shareExact, splitLimit } from '../../src/upstream/share.js';

test('the shares of a limit sum to exactly the limit, and differ by at most one', () => {
  for (let n = 1; n <= 9; n++) {
    for (let total = 0; total <= 40; total++) {
      const shares = Array.from({ length: n }, (_, i) => splitLimit(total, i, n));
      assert.equal(shares.reduce((a, b) => a + b, 0), total, `${total} over ${n}: ${shares.join(',')}`);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `${total} over ${n}: ${shares.join(',')}`);
      // The larger shares go to the first workers.
      assert.deepEqual([...shares].sort((a, b) => b - a), shares);
    }
  }
  assert.deepEqual([0, 1, 2, 3].map((i) => splitLimit(10, i, 4)), [3, 3, 2, 2]);
  assert.deepEqual([0, 1].map((i) => splitLimit(100, i, 2)), [50, 50]);
  assert.deepEqual([0, 1, 2].map((i) => splitLimit(100, i, 3)), [34, 33, 33]);
});

test('a limit smaller than the worker count: exact shares may be 0, the at-least-one shares are 1', (t) => {
  t.after(() => setWorkerPlace(1, 1));
  assert.deepEqual([0, 1, 2, 3].map((i) => splitLimit(2, i, 4)), [1, 1, 0, 0]);
  const atLeastOne: number[] = [];
  const exact: number[] = [];
  for (let w = 1; w <= 4; w++) {
    setWorkerPlace(w, 4);
    atLeastOne.push(shareAtLeastOne(2));
    exact.push(shareExact(2));
  }
  assert.deepEqual(atLeastOne, [1, 1, 1, 1]);
  assert.deepEqual(exact, [1, 1, 0, 0]);
  // Outside a fleet (or with nonsense in the environment) the share is the whole limit.
  setWorkerPlace(1, 1);
  assert.equal(shareAtLeastOne(7), 7);
  setWorkerPlace(Number.NaN, Number.NaN);
  assert.equal(shareExact(7), 7);
  setWorkerPlace(5, 4);
  assert.equal(shareExact(7), 7);
});

function config(upstream: Record<string, unknown>): UsherConfig {
  const r = loadConfigObject({ listeners: [{ address: 0 }], upstreams: { app: { servers: [{ url: 'http://127.0.0.1:1', max_requests: 3 }], ...upstream } }, routes: [{ upstream: 'app' }] }, '<test>');
  assert.ok(r.ok, JSON.stringify(r));
  return r.config;
}

test("a worker's circuit breaker, per-server limit and retry budget take its share", (t) => {
  t.after(() => setWorkerPlace(1, 1));
  const up = config({ circuit_breaker: { max_requests: 10, max_pending: 5 }, retry: { budget: { percent: 0, min_retries: 3 } } }).upstreams.app!;
  const seen: { inflight: number; pending: number; server: number; retries: number }[] = [];
  for (let w = 1; w <= 2; w++) {
    setWorkerPlace(w, 2);
    const cluster = new Cluster(up);
    const a = cluster.admission!;
    const waiters: Waiter[] = [];
    const waiter = (): Waiter => {
      const x: Waiter = { admitted: () => undefined, overloaded: () => undefined, queueTimer: null };
      waiters.push(x);
      return x;
    };
    let inflight = 0;
    while (inflight < 100 && a.admit(waiter()) === 'go') {
      a.inflight++;
      inflight++;
    }
    // The first refused one was queued: fill the queue until the answer is 503.
    while (a.pending < 100 && a.admit(waiter()) === 'queued');
    let retries = 0;
    while (retries < 100 && cluster.retry.budget.tryAcquire()) retries++;
    seen.push({ inflight, pending: a.pending, server: cluster.endpoints[0]!.maxRequests, retries });
    for (const x of waiters) a.withdraw(x);
  }
  assert.deepEqual(seen, [
    { inflight: 5, pending: 3, server: 2, retries: 2 },
    { inflight: 5, pending: 2, server: 1, retries: 1 },
  ]);
});

test('the settings smaller than the worker count are named for the warning at config load', () => {
  const c = config({ circuit_breaker: { max_requests: 3, max_pending: 2 }, retry: { budget: { min_retries: 3 } } });
  assert.deepEqual(limitsBelowWorkers(Object.values(c.upstreams), 2), []);
  assert.deepEqual(
    limitsBelowWorkers(Object.values(c.upstreams), 4).map((w) => `${w.setting}=${w.limit}: ${w.effect}`),
    [
      'upstreams.app.circuit_breaker.max_requests=3: each of the 4 workers keeps 1, so the instance allows 4',
      'upstreams.app.circuit_breaker.max_pending=2: 2 of the 4 workers queue nothing (503 at once)',
      'upstreams.app.servers[0].max_requests=3: each of the 4 workers keeps 1, so the instance allows 4',
    ],
  );
  assert.deepEqual(limitsBelowWorkers(Object.values(c.upstreams), 1), []);
});
