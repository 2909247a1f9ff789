// Finished spans to an OTLP/HTTP receiver (https://opentelemetry.io/docs/specs/otlp/#otlphttp),
// JSON-encoded: a bounded queue (full: the span is dropped and counted), batches of `max_batch`
// sent at once or after `flush_interval`, one export in flight at a time, each with a timeout.
// A collector that is slow, refuses or is down costs spans (counted), never requests: nothing
// here is awaited by the request path, and nothing here throws into it.
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
  /** Spans lost to a failed export (refused, timed out, unreachable). */
  failed: number;
}

const LOG_EVERY_MS = 60_000;

export class OtlpExporter {
  readonly counts: ExportCounts = { exported: 0, dropped: 0, failed: 0 };
  private queue: EncodedSpan[] = [];
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
    if (q.length >= this.config.max_queue || this.closed) {
      this.counts.dropped++;
      return;
    }
    q.push(spanJson(span, this.offset));
    if (q.length >= this.config.max_batch) {
      // Sent from the next turn of the event loop, not inside the request's done phase.
      if (this.inflight === null) this.schedule(0);
    } else if (this.timer === null) this.schedule(this.config.flush_interval);
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Sends everything queued now (in batches), waiting for the exports; for close and tests. */
  async flush(): Promise<void> {
    while (this.inflight !== null || this.queue.length > 0) {
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
    this.counts.failed += this.queue.length;
    this.queue = [];
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
    if (this.inflight === null && this.queue.length > 0) this.exportBatch();
  }

  private exportBatch(): void {
    const batch = this.queue.length <= this.config.max_batch ? this.queue : this.queue.slice(0, this.config.max_batch);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    const body = this.encode(batch);
    this.inflight = this.send(body, batch.length).finally(() => {
      this.inflight = null;
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

  private async send(body: string, n: number): Promise<void> {
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
        return;
      }
      this.counts.failed += n;
      this.warn(`the collector answered ${res.statusCode}`, text.slice(0, 200));
    } catch (err) {
      this.counts.failed += n;
      this.warn((err as Error).message ?? String(err), undefined);
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
