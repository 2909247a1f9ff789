// The dashboard's live numbers (src/admin/live.ts): nothing subscribes to the request path until
// a dashboard takes a window, and nothing after it stops; the log-bucket histogram's quantiles
// stay within a bucket (9%) of the true value, and the workers' windows merge exactly.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import { bucketBound, bucketOf, LiveStats, mergeRoute, quantile, type RouteWindow } from '../../src/admin/live.js';
import { merge } from '../../src/admin/dashboard.js';
import { CHANNELS } from '../../src/observability/events.js';

const done = diagnostics.channel(CHANNELS.done);

/** A done event as the exchange publishes it, for `server`. */
function publish(server: unknown, route: string, status: number, durationMs: number, reason: string | null = null): void {
  done.publish({
    server,
    ctx: { route: { name: route }, requestId: `id-${route}-${durationMs}`, method: 'GET', target: '/x', upstream: { name: 'app', server: 'http://s', attempts: 1 } },
    host: 'h',
    status,
    reason,
    bytesIn: 0,
    bytesOut: 0,
    durationMs,
  });
}

test('the collector subscribes to the request path only between the first take and stop', () => {
  const host = { runtime: { clusters: new Map() }, live: undefined as unknown as LiveStats };
  const live = new LiveStats(host);
  host.live = live;
  assert.equal(done.hasSubscribers, false, 'no dashboard: the done event is not even built');
  assert.equal(live.take().ms, 0);
  assert.equal(done.hasSubscribers, true);
  publish(host, 'api', 200, 5);
  publish(host, 'api', 503, 50, 'upstream_overloaded');
  publish(host, 'web', 404, 1, 'no_route');
  publish(host, 'web', 200, 0.5, 'cache_hit');
  publish({ other: true }, 'api', 200, 5); // another usher in the same process
  const w = live.take();
  assert.equal(w.routes.api!.count, 2);
  assert.equal(w.routes.api!.errors, 1);
  assert.equal(w.routes.web!.count, 2);
  assert.equal(w.routes.web!.errors, 0);
  // Errors: the 5xx and the 4xx with a reason; not the cache hit.
  assert.deepEqual(w.errors.map((e) => [e.route, e.status, e.reason]), [['api', 503, 'upstream_overloaded'], ['web', 404, 'no_route']]);
  // The next window starts empty.
  assert.deepEqual(live.take().routes, {});
  live.stop();
  assert.equal(done.hasSubscribers, false);
});

test('quantiles from the log buckets are within one bucket of the true value; windows merge by adding', () => {
  for (const ms of [0.02, 0.3, 1, 4.2, 17, 250, 3000]) {
    const b = bucketOf(ms);
    assert.ok(bucketBound(b) >= ms && bucketBound(b - 1) < ms, `${ms} ms in bucket ${b} (${bucketBound(b - 1)}, ${bucketBound(b)}]`);
    assert.ok(bucketBound(b) / ms < 1.0906, `${ms}: ${bucketBound(b)}`);
  }
  // 1..1000 ms, one request each: p50 ≈ 500, p99 ≈ 990.
  const win = (from: number, to: number): RouteWindow => {
    const counts = new Map<number, number>();
    for (let ms = from; ms <= to; ms++) counts.set(bucketOf(ms), (counts.get(bucketOf(ms)) ?? 0) + 1);
    return { count: to - from + 1, errors: 0, hist: [...counts.keys()].sort((a, b) => a - b).flatMap((b) => [b, counts.get(b)!]) };
  };
  const all = win(1, 1000);
  const p50 = quantile(all.hist, 0.5)!;
  const p99 = quantile(all.hist, 0.99)!;
  assert.ok(p50 >= 500 && p50 < 500 * 1.0906, String(p50));
  assert.ok(p99 >= 990 && p99 < 990 * 1.0906, String(p99));
  // Two workers' halves merge into the same histogram as one process's whole.
  const merged = mergeRoute(mergeRoute(undefined, win(1, 400)), win(401, 1000));
  assert.equal(merged.count, 1000);
  assert.equal(quantile(merged.hist, 0.5), p50);
  assert.equal(quantile(merged.hist, 0.99), p99);
  assert.equal(quantile([], 0.5), null);
  // A tick from two windows: the routes sorted by traffic, the total over all.
  const tick = merge([
    { ms: 1000, routes: { a: win(1, 10), b: win(1, 30) }, errors: [], ejected: [] },
    { ms: 1001, routes: { a: win(1, 10) }, errors: [], ejected: [] },
  ]);
  assert.deepEqual(tick.routes.map((r) => [r[0], r[1]]), [['b', 30], ['a', 20]]);
  assert.equal(tick.total[0], 50);
  assert.equal(tick.ms, 1001);
});
