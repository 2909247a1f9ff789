// Circuit breaking and queueing (Envoy's circuit breakers, HAProxy's maxconn/maxqueue): an
// upstream-wide limit on requests in flight, per-server limits (an endpoint at its limit is
// skipped by the balancer), and a bounded queue with a timeout for requests that find no
// capacity. Over the limits the proxy answers 503 upstream_overloaded at once instead of piling
// requests onto a struggling upstream.
import type { CircuitBreakerConfig } from './config/types.js';
import type { Endpoint } from './endpoint.js';
import { shareAtLeastOne, shareExact } from './share.js';

/** What a queued request must offer: a way to go on, and to give up. */
export interface Waiter {
  admitted(): void;
  overloaded(): void;
  queueTimer: NodeJS.Timeout | null;
}

export type Verdict = 'go' | 'queued' | 'overloaded';

export class Admission {
  private readonly maxRequests: number | null;
  private readonly maxPending: number;
  private readonly queueTimeout: number;
  private endpoints: readonly Endpoint[];
  private readonly queue: Waiter[] = [];
  private draining = false;
  /** Requests in flight across the upstream. */
  inflight = 0;
  /** Requests answered 503 upstream_overloaded (for tests and metrics). */
  rejected = 0;

  constructor(config: CircuitBreakerConfig, endpoints: readonly Endpoint[]) {
    // With N workers: this worker's share of the instance-wide limits (share.ts).
    this.maxRequests = config.max_requests === null ? null : shareAtLeastOne(config.max_requests);
    this.maxPending = shareExact(config.max_pending);
    this.queueTimeout = config.queue_timeout;
    this.endpoints = endpoints;
  }

  setEndpoints(endpoints: readonly Endpoint[]): void {
    this.endpoints = endpoints;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** A new request (first attempt) asks to go. */
  admit(w: Waiter): Verdict {
    if (this.queue.length === 0 && this.hasCapacity()) return 'go';
    if (this.queue.length < this.maxPending) {
      this.queue.push(w);
      w.queueTimer = setTimeout(onQueueTimeout, this.queueTimeout, this, w);
      return 'queued';
    }
    this.rejected++;
    return 'overloaded';
  }

  /** A request left the queue on its own (client gone). */
  withdraw(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    if (w.queueTimer !== null) clearTimeout(w.queueTimer);
    w.queueTimer = null;
  }

  /** An attempt finished: a queued request may take its place (on the next turn of the loop). */
  released(): void {
    if (this.queue.length > 0 && !this.draining) {
      this.draining = true;
      setImmediate(drain, this);
    }
  }

  drainQueue(): void {
    this.draining = false;
    while (this.queue.length > 0 && this.hasCapacity()) {
      const w = this.queue.shift()!;
      if (w.queueTimer !== null) clearTimeout(w.queueTimer);
      w.queueTimer = null;
      w.admitted();
    }
  }

  timedOut(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i < 0) return;
    this.queue.splice(i, 1);
    w.queueTimer = null;
    this.rejected++;
    w.overloaded();
  }

  /** Room upstream-wide, and at least one server below its own limit. */
  hasCapacity(): boolean {
    if (this.maxRequests !== null && this.inflight >= this.maxRequests) return false;
    // Health is the balancer's business (and panic may use unhealthy servers): only capacity here.
    for (const e of this.endpoints) if (e.hasCapacity()) return true;
    return false;
  }
}

function drain(a: Admission): void {
  a.drainQueue();
}

function onQueueTimeout(a: Admission, w: Waiter): void {
  a.timedOut(w);
}
