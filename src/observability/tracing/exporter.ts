// Finished spans to an OTLP/HTTP receiver (https://opentelemetry.io/docs/specs/otlp/#otlphttp),
// JSON-encoded: a bounded queue (full: the span is dropped and counted), batches of `max_batch`
// sent at once or after `flush_interval`, one export in flight at a time, each with a timeout.
// A collector that is slow, refuses or is down costs spans (counted), never requests: nothing
// here is awaited by the request path, and nothing here throws into it.
//
// Retries, as OTLP/HTTP asks (https://opentelemetry.io/docs/specs/otlp/#retryable-response-codes):
// a batch answered 429, 502, 503 or 504, or lost to a network error or a timeout, is sent again
// after a backoff (1 s doubling, ±20% jitter, at most 30 s) or after the receiver's Retry-After
// (seconds or an HTTP date; at most 60 s), up to MAX_ATTEMPTS sends; then its spans count as
// failed. The batch waiting for its retry stays within `max_queue` (new spans are dropped while
// it and the queue fill it, as the batch in flight does), and while it waits nothing else is
// sent: the receiver said to wait.
// Any other answer (400: a malformed export) is not retried.
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import type { TracingConfig } from './config.js';
import { spanJson, type SpanRecord } from './span.js';

/** A finished span, already in its OTLP JSON form. */
type EncodedSpan = string;

export interface ExportCounts {
  /** Spans the receiver accepted (2xx). */
  exported: number;
  /** Spans dropped because the queue was full. */
  dropped: number;
  /** Spans lost to a failed export (refused, timed out, unreachable, out of retries). */
  failed: number;
  /** Spans sent again after a retryable failure (each resend counts its spans). */
  retried: number;
}

const LOG_EVERY_MS = 60_000;
/** Sends of one batch, the first included. */
export const MAX_ATTEMPTS = 5;
const BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const MAX_RETRY_AFTER_MS = 60_000;
/** The statuses OTLP/HTTP says to retry. */
const RETRYABLE = new Set([429, 502, 503, 504]);

/**
 * How long to wait before send `attempt` + 1 (attempt ≥ 1 failed): the receiver's Retry-After
 * (delay-seconds or an HTTP date, RFC 9110 §10.2.3), within 0..60 s, or else an exponential
 * backoff with ±20% jitter (`random` in [0, 1)).
 */
export function retryDelay(attempt: number, retryAfter: string | undefined, now = Date.now(), random = Math.random()): number {
  if (retryAfter !== undefined) {
    const v = retryAfter.trim();
    const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
    if (Number.isFinite(ms)) return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
  }
  const base = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random));
}

/** What one send ended with: done (exported, or failed for good), or retry after `delayMs`. */
type Outcome = { retry: false } | { retry: true; delayMs: number; problem: string; detail: string | undefined };

export class OtlpExporter {
  readonly counts: ExportCounts = { exported: 0, dropped: 0, failed: 0, retried: 0 };
  private queue: EncodedSpan[] = [];
  /** A batch waiting for its next send (a retryable failure), and the sends it had. */
  private retrying: { spans: EncodedSpan[]; attempts: number } | null = null;
  /** While a retry waits (its timer is `timer`), nothing else is sent. */
  private backingOff = false;
  /** Spans in the export in flight: they count within max_queue (a 503 keeps them for a retry). */
  private sending = 0;
  /** Date.now() − performance.now(): span times are performance.now() ms; refreshed at every export. */
  private offset = Date.now() - performance.now();
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;
  /** The resource and scope, as JSON text (the same in every export). */
  private readonly resource: string;
  private readonly scope: string;
  private lastLog = -Infinity;
  private closed = false;

  constructor(
    private readonly config: TracingConfig,
    private readonly logger: Logger,
    version: string,
  ) {
    // Its own connection pool: the embedding program's global dispatcher is not ours to use.
    this.agent = new Agent({ connections: 2, keepAliveTimeout: 30_000, headersTimeout: config.timeout, bodyTimeout: config.timeout });
    this.headers = { 'content-type': 'application/json' };
    for (const [k, v] of config.headers) this.headers[k] = v;
    this.resource = JSON.stringify({
      attributes: [
        { key: 'service.name', value: { stringValue: config.service_name } },
        { key: 'service.version', value: { stringValue: version } },
        { key: 'telemetry.sdk.name', value: { stringValue: 'usher' } },
        { key: 'telemetry.sdk.language', value: { stringValue: 'nodejs' } },
      ],
    });
    this.scope = JSON.stringify({ name: 'usher', version });
  }

  /**
   * Queues a finished span (the request path's only call). It is encoded now, into a string:
   * holding the span objects (a record and an attribute list each) until their batch leaves kept
   * ~35 objects per span alive across young-generation collections, to be promoted and marked
   * (with tracing on, callgrind counted more instructions on the collector's threads than the
   * main thread's added ones).
   */
  add(span: SpanRecord): void {
    const q = this.queue;
    if (q.length + this.sending + (this.retrying?.spans.length ?? 0) >= this.config.max_queue || this.closed) {
      this.counts.dropped++;
      return;
    }
    q.push(spanJson(span, this.offset));
    if (this.backingOff) return;
    if (q.length >= this.config.max_batch) {
      // Sent from the next turn of the event loop, not inside the request's done phase.
      if (this.inflight === null) this.schedule(0);
    } else if (this.timer === null) this.schedule(this.config.flush_interval);
  }

  /** Spans waiting for export: queued, and a batch waiting for its retry. */
  get queued(): number {
    return this.queue.length + (this.retrying?.spans.length ?? 0);
  }

  /** Sends everything queued now (in batches; a batch due for a retry at once), waiting for the exports; for close and tests. */
  async flush(): Promise<void> {
    while (this.inflight !== null || this.queue.length > 0 || this.retrying !== null) {
      if (this.inflight !== null) await this.inflight;
      else this.exportBatch();
    }
  }

  /** Flushes what is queued within `timeoutMs`, then closes the connection pool. */
  async close(timeoutMs = this.config.timeout): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((resolve) => (t = setTimeout(resolve, timeoutMs).unref()))]);
    clearTimeout(t);
    this.counts.failed += this.queued;
    this.queue = [];
    this.retrying = null;
    await this.agent.destroy().catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    // Unref'd: queued spans never keep the process alive (close() flushes them).
    this.timer = setTimeout(onTimer, ms, this).unref();
  }

  /** The timer fired: one batch out (the next follows when it is done, if a full one waits). */
  tick(): void {
    this.timer = null;
    this.backingOff = false;
    if (this.inflight === null && (this.queue.length > 0 || this.retrying !== null)) this.exportBatch();
  }

  private exportBatch(): void {
    let batch: EncodedSpan[];
    let attempts = 0;
    if (this.retrying !== null) {
      ({ spans: batch, attempts } = this.retrying);
      this.retrying = null;
      this.counts.retried += batch.length;
    } else {
      batch = this.queue.length <= this.config.max_batch ? this.queue : this.queue.slice(0, this.config.max_batch);
      this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    }
    const body = this.encode(batch);
    this.sending = batch.length;
    this.inflight = this.send(body, batch.length, attempts + 1).then((outcome) => {
      this.inflight = null;
      this.sending = 0;
      if (outcome.retry && attempts + 1 < MAX_ATTEMPTS) {
        this.retrying = { spans: batch, attempts: attempts + 1 };
        this.warn(`${outcome.problem} (send ${attempts + 1} of at most ${MAX_ATTEMPTS}: retrying in ${outcome.delayMs} ms)`, outcome.detail);
        // Closing: flush() sends it again at once, within close's timeout.
        if (this.closed) return;
        this.schedule(outcome.delayMs);
        this.backingOff = true;
        return;
      }
      if (outcome.retry) {
        this.counts.failed += batch.length;
        this.warn(`${outcome.problem} (${MAX_ATTEMPTS} sends: its spans are lost)`, outcome.detail);
      }
      if (this.closed) return;
      if (this.queue.length >= this.config.max_batch) this.schedule(0);
      else if (this.queue.length > 0 && this.timer === null) this.schedule(this.config.flush_interval);
    });
  }

  /** ExportTraceServiceRequest in OTLP JSON (hex trace and span ids, times as decimal strings). */
  private encode(batch: readonly EncodedSpan[]): string {
    this.offset = Date.now() - performance.now();
    return `{"resourceSpans":[{"resource":${this.resource},"scopeSpans":[{"scope":${this.scope},"spans":[${batch.join(',')}]}]}]}`;
  }

  /** Send `attempt` (1, 2, ...) of a batch of `n` spans; counts what it settles (exported, or failed for good). */
  private async send(body: string, n: number, attempt: number): Promise<Outcome> {
    try {
      const res = await request(this.config.endpoint, {
        method: 'POST',
        headers: this.headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.config.timeout),
      });
      const text = await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        // A partial success (OTLP §partial-success) names the spans the receiver rejected.
        const rejected = partialRejections(text);
        this.counts.exported += n - rejected;
        this.counts.failed += rejected;
        return { retry: false };
      }
      const problem = `the collector answered ${res.statusCode}`;
      if (RETRYABLE.has(res.statusCode)) {
        const ra = res.headers['retry-after'];
        return { retry: true, delayMs: retryDelay(attempt, Array.isArray(ra) ? ra[0] : ra), problem, detail: text.slice(0, 200) };
      }
      this.counts.failed += n;
      this.warn(problem, text.slice(0, 200));
      return { retry: false };
    } catch (err) {
      // Unreachable, reset, timed out: the network's fault, worth another send.
      return { retry: true, delayMs: retryDelay(attempt, undefined), problem: (err as Error).message ?? String(err), detail: undefined };
    }
  }

  /** At most one line a minute: a collector that is down must not flood the log. */
  private warn(problem: string, detail: string | undefined): void {
    const now = performance.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.lastLog = now;
    this.logger.warn({ endpoint: this.config.endpoint, problem, detail, counts: { ...this.counts } }, 'tracing: spans could not be exported (requests are not affected)');
  }
}

function onTimer(e: OtlpExporter): void {
  e.tick();
}

function partialRejections(text: string): number {
  if (!text.includes('rejectedSpans')) return 0;
  try {
    const n = Number((JSON.parse(text) as { partialSuccess?: { rejectedSpans?: string | number } }).partialSuccess?.rejectedSpans ?? 0);
    return Number.isFinite(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}
