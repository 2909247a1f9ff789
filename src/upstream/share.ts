// With `workers` > 1 each worker process holds its own circuit breakers and retry budgets (a
// count in the primary would cost an IPC round trip per upstream request). So that an upstream's
// limit holds per usher instance, not N times over, each worker takes a fixed share of it: worker
// i (0-based) of N gets floor(L/N), plus one if i < L mod N, so the shares sum to exactly L. The
// round-robin scheduling of node:cluster spreads connections evenly, so fixed shares fit.
//
// A limit smaller than N would leave some workers a share of 0. For the limits where 0 would mean
// "nothing at all" (max_requests: every request refused; min_retries: a quiet upstream never
// retried on that worker) each worker keeps at least 1, so the instance-wide limit is then N
// instead of L; for max_requests the primary logs a warning naming the setting (it protects an
// upstream, so exceeding it is news), not for min_retries, a floor that is only raised (the
// default, 3, is below the worker count on every machine with 4 cores or more). max_pending is split exactly: a
// share of 0 means that worker has no queue and answers 503 at once, which is what a smaller
// queue means anyway.
import type { UpstreamConfig } from './config/types.js';

/** The share of worker `index` (0-based) of `count` in a limit of `total`: the shares sum to `total`. */
export function splitLimit(total: number, index: number, count: number): number {
  if (count <= 1) return total;
  const base = Math.floor(total / count);
  return base + (index < total % count ? 1 : 0);
}

/** This process's place among the workers: worker 0 of 1 outside a fleet (every share is the whole). */
let place = { index: 0, count: 1 };

/** A worker process: its number (1..N) and the number of workers, before it builds its clusters. */
export function setWorkerPlace(worker: number, count: number): void {
  place = Number.isInteger(worker) && Number.isInteger(count) && count > 1 && worker >= 1 && worker <= count ? { index: worker - 1, count } : { index: 0, count: 1 };
}

/** This worker's share of a limit where 0 would refuse everything: at least 1 (when the limit is). */
export function shareAtLeastOne(total: number): number {
  return total <= 0 ? total : Math.max(1, splitLimit(total, place.index, place.count));
}

/** This worker's exact share (may be 0 when `total` < the worker count). */
export function shareExact(total: number): number {
  return splitLimit(total, place.index, place.count);
}

/**
 * The settings of `upstreams` that are smaller than `count` workers: what a warning names at
 * config load (the primary logs them once, not every worker).
 */
export function limitsBelowWorkers(upstreams: Iterable<UpstreamConfig>, count: number): { setting: string; limit: number; effect: string }[] {
  if (count <= 1) return [];
  const out: { setting: string; limit: number; effect: string }[] = [];
  const roundUp = `each of the ${count} workers keeps 1, so the instance allows ${count}`;
  for (const u of upstreams) {
    const cb = u.circuit_breaker;
    if (cb !== null && cb.max_requests !== null && cb.max_requests < count) out.push({ setting: `upstreams.${u.name}.circuit_breaker.max_requests`, limit: cb.max_requests, effect: roundUp });
    if (cb !== null && cb.max_pending > 0 && cb.max_pending < count) out.push({ setting: `upstreams.${u.name}.circuit_breaker.max_pending`, limit: cb.max_pending, effect: `${count - cb.max_pending} of the ${count} workers queue nothing (503 at once)` });
    u.servers.forEach((s, i) => {
      if (s.max_requests !== null && s.max_requests < count) out.push({ setting: `upstreams.${u.name}.servers[${i}].max_requests`, limit: s.max_requests, effect: roundUp });
    });
  }
  return out;
}
