// What an upstream's `retry:` settings allow, compiled once per cluster. The proxy stage asks
// it after a failed attempt; the rules that make a retry *safe* (nothing sent, idempotent
// method, body replayable, headers not yet downstream) stay in the proxy stage, which knows them.
import { performance } from 'node:perf_hooks';
import type { RetryConfig } from './config/types.js';
import type { ReasonCode } from '../errors/index.js';
import { shareAtLeastOne } from './share.js';

export class RetryPolicy {
  /** Retries after the first try (so at most attempts + 1 tries). */
  readonly attempts: number;
  readonly perTryTimeout: number | null;
  /** Largest request body (bytes, known Content-Length) buffered so that it can be replayed. */
  readonly bufferBody: number;
  readonly budget: RetryBudget;
  private readonly statuses: ReadonlySet<number>;
  private readonly onReset: boolean;
  private readonly backoffBase: number;
  private readonly backoffMax: number;

  constructor(config: RetryConfig) {
    this.attempts = config.attempts;
    this.perTryTimeout = config.per_try_timeout;
    this.bufferBody = config.buffer_body;
    this.statuses = new Set(config.on.filter((x): x is number => typeof x === 'number'));
    this.onReset = config.on.includes('reset');
    this.backoffBase = config.backoff.base;
    this.backoffMax = config.backoff.max;
    // With N workers: the percent holds per worker as it does per instance; min_retries is shared out (share.ts).
    this.budget = new RetryBudget(config.budget.percent, shareAtLeastOne(config.budget.min_retries));
  }

  /** A response with this status may be retried (if everything else allows it). */
  retriesStatus(status: number): boolean {
    return this.statuses.has(status);
  }

  /** A failure without a response may be retried: a reset, or a timeout (which is a 504). */
  retriesReason(reason: ReasonCode): boolean {
    if (reason === 'upstream_reset') return this.onReset;
    if (reason === 'upstream_timeout') return this.statuses.has(504);
    return false;
  }

  /** Delay before retry n (1-based): "full jitter" exponential backoff (AWS Architecture Blog, 2015). */
  backoff(n: number): number {
    if (this.backoffBase <= 0) return 0;
    const cap = Math.min(this.backoffMax, this.backoffBase * 2 ** (n - 1));
    return Math.random() * cap;
  }
}

const BUCKET_MS = 5000;

/**
 * Retries may be at most `percent` of the requests of the last 5–10 s (two rotating buckets),
 * plus `min` so that a quiet upstream can still retry at all — the budget of Finagle and gRPC's
 * retry throttling, in counts. Under a full outage the load on the upstream is thereby at most
 * (1 + percent/100) × the client's.
 */
export class RetryBudget {
  private readonly share: number;
  private readonly min: number;
  private bucketStart = 0;
  private requests = 0;
  private retries = 0;
  private prevRequests = 0;
  private prevRetries = 0;

  constructor(percent: number, min: number) {
    this.share = percent / 100;
    this.min = min;
  }

  noteRequest(): void {
    this.rotate();
    this.requests++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryAcquire(): boolean {
    if (!this.available()) return false;
    this.retries++;
    return true;
  }

  /** Whether a retry is left in the budget (takes none). */
  available(): boolean {
    this.rotate();
    const allowed = Math.max(this.min, this.share * (this.requests + this.prevRequests));
    return this.retries + this.prevRetries < allowed;
  }

  private rotate(): void {
    const now = performance.now();
    if (now - this.bucketStart < BUCKET_MS) return;
    const skipped = now - this.bucketStart >= 2 * BUCKET_MS;
    this.prevRequests = skipped ? 0 : this.requests;
    this.prevRetries = skipped ? 0 : this.retries;
    this.requests = 0;
    this.retries = 0;
    this.bucketStart = now;
  }
}
