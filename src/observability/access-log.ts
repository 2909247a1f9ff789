// The access log: one line per request, written from the `usher:request:done` event (events.ts),
// independent of the process log level. Formats in access-format.ts. Lines go to stdout or a
// file through sonic-boom (pino's destination): asynchronous writes that batch what arrives
// while one is in flight, so the event loop never waits on the disk, with a bounded buffer —
// when the disk is full or slow, or stdout is a pipe nobody reads, lines beyond it are dropped
// and counted rather than held. A write error (ENOSPC, EIO) keeps the lines buffered and is
// retried with the next line. The file is reopened by path on SIGUSR1 or POST /reopen-logs
// (logrotate's rename-then-signal, no copytruncate); a reopen that fails keeps the old file.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { AccessLogSettings } from '../config/types.js';
import { CHANNELS, type DoneEvent } from './events.js';
import { compileTextFormat, jsonFields } from './access-format.js';
import type { RequestContext } from '../pipeline/types.js';

type Destination = ReturnType<typeof pino.destination>;

export interface AccessLogCounts {
  /** Lines handed to the destination. */
  lines: number;
  /** Lines dropped: the buffer was full (the destination could not keep up, or kept failing). */
  dropped: number;
  /** Write or reopen errors of the destination. */
  errors: number;
  /** Successful requests left out by log.access_log_sample. */
  sampled_out: number;
}

const LOG_EVERY_MS = 60_000;

export class AccessLog {
  readonly counts: AccessLogCounts = { lines: 0, dropped: 0, errors: 0, sampled_out: 0 };
  private readonly dest: Destination | NodeJS.WritableStream;
  /** The destination usher opened (stdout or a file); null for a stream given by the embedding program. */
  private readonly boom: Destination | null;
  private readonly json: Logger | null;
  private readonly text: ((ev: DoneEvent) => string) | null;
  private readonly unsubscribe: () => void;
  private lastWarn = -Infinity;

  constructor(
    private readonly server: unknown,
    readonly settings: AccessLogSettings,
    private readonly logger: Logger,
    destination?: NodeJS.WritableStream,
    /** Fields on every JSON line (a worker process: its id). */
    fields?: Record<string, unknown>,
  ) {
    // A file in the config wins over the embedding program's stream (which replaces stdout).
    if (destination !== undefined && settings.file === null) {
      this.dest = destination;
      this.boom = null;
    } else {
      // minLength batches small lines into one write (flushed at least every second when traffic
      // is light); maxLength bounds what is held when writes fail or lag.
      this.boom = pino.destination({
        dest: settings.file ?? 1,
        // Worker processes share stdout: only a write of whole lines up to PIPE_BUF (4 KiB) is
        // atomic on a pipe, and a batched write can be larger and cut a line; so they write
        // stdout line by line. (A file is opened O_APPEND: each batched write lands whole.)
        sync: fields !== undefined && settings.file === null,
        minLength: settings.file === null ? 0 : 4096,
        maxLength: settings.buffer,
        periodicFlush: settings.file === null ? 0 : 1000,
        append: true,
      } as Parameters<typeof pino.destination>[0]);
      this.dest = this.boom;
      this.boom.on('drop', this.onDrop);
      this.boom.on('error', this.onError);
    }
    if (settings.format === 'json') {
      this.json = pino({ level: 'info', base: fields ?? null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, this.dest);
      this.text = null;
    } else {
      this.json = null;
      this.text = compileTextFormat(settings.format);
    }
    diagnostics.subscribe(CHANNELS.done, this.onDone);
    this.unsubscribe = () => diagnostics.unsubscribe(CHANNELS.done, this.onDone);
  }

  /** The file lines go to, or null (stdout, or the embedding program's stream). */
  get file(): string | null {
    return this.boom === null ? null : this.settings.file;
  }

  /** A request refused before it was parsed (bad framing, a header too large): the client and why. */
  rejected(client: string | undefined, reason: string, detail: string): void {
    this.counts.lines++;
    if (this.json !== null) this.json.info({ client, status: 0, reason, detail }, 'rejected');
    else this.dest.write(`${this.text!(rejectedEvent(client ?? '', reason))}\n`);
  }

  /** Opens the file again by its path (after logrotate renamed it). False when there is no file. */
  reopen(): boolean {
    if (this.boom === null || this.settings.file === null) return false;
    try {
      this.boom.reopen();
    } catch (err) {
      this.onError(err as Error);
    }
    return true;
  }

  /**
   * Writes out what is buffered, as far as the destination takes it within `graceMs`, and closes
   * a file. Never sonic-boom's flushSync: it retries a failing write (ENOSPC, EPIPE) forever.
   */
  async close(graceMs = 2000): Promise<void> {
    this.unsubscribe();
    const boom = this.boom;
    if (boom === null) return;
    const b = boom as unknown as { _len: number; destroyed: boolean };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs).unref()));
    if (this.settings.file === null) {
      // stdout stays open (the process log and the embedding program write to it too).
      const drained = new Promise<void>((resolve) => {
        const check = () => {
          if (b._len > 0 && !b.destroyed) return;
          boom.off('write', check);
          resolve();
        };
        boom.on('write', check);
        check();
      });
      await Promise.race([drained, timeout]);
    } else {
      const closed = new Promise<void>((resolve) => boom.once('close', () => resolve()));
      boom.end();
      await Promise.race([closed, timeout]);
      // What a failing disk still held is lost (the errors were counted); the descriptor is not.
      if (!b.destroyed) boom.destroy();
    }
    clearTimeout(timer);
  }

  /** For tests: asks for the buffered lines to be written now (the file's periodic flush does it within a second anyway). */
  flush(): Promise<void> {
    const boom = this.boom;
    if (boom === null) return Promise.resolve();
    return new Promise((resolve) => {
      // Bounded: a destination that keeps failing never drains.
      const t = setTimeout(resolve, 2000).unref();
      try {
        boom.flush(() => {
          clearTimeout(t);
          resolve();
        });
      } catch {
        resolve();
      }
    });
  }

  private readonly onDone = (message: unknown): void => {
    const ev = message as DoneEvent;
    if (ev.server !== this.server) return;
    // Sampling leaves out successes only: every refusal, error and abandoned request is written.
    if (this.settings.sample < 1 && ev.status > 0 && ev.status < 400 && ev.reason === null && Math.random() >= this.settings.sample) {
      this.counts.sampled_out++;
      return;
    }
    this.counts.lines++;
    if (this.json !== null) this.json.info(jsonFields(ev));
    else this.dest.write(`${this.text!(ev)}\n`);
  };

  private readonly onDrop = (): void => {
    this.counts.dropped++;
    this.warn(null);
  };

  private readonly onError = (err: Error): void => {
    this.counts.errors++;
    this.warn(err);
  };

  /** At most one line a minute: a full disk must not flood the process log. */
  private warn(err: Error | null): void {
    const now = performance.now();
    if (now - this.lastWarn < LOG_EVERY_MS) return;
    this.lastWarn = now;
    this.logger.error(
      { err: err ?? undefined, file: this.settings.file ?? 'stdout', counts: { ...this.counts } },
      err === null ? 'access log: lines dropped (the destination is not keeping up); serving goes on' : 'access log: write failed; lines are kept (up to log.access_log_buffer) and written again with the next one; serving goes on',
    );
  }
}

/** A done event for a request that never became one (rejected by the parser): what a format can show. */
function rejectedEvent(client: string, reason: string): DoneEvent {
  const now = performance.now();
  const ctx = {
    requestId: '',
    method: '',
    target: '',
    httpVersion: '1.1',
    clientIp: client,
    clientAddress: client,
    route: undefined,
    upstream: { name: undefined, server: undefined, attempts: 0 },
    timings: { start: now, end: now },
    header: () => undefined,
    get: () => undefined,
  } as unknown as RequestContext;
  return { server: null, ctx, host: null, status: 0, reason: reason as DoneEvent['reason'], bytesIn: null, bytesOut: null, durationMs: 0 };
}
