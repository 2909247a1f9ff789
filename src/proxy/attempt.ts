// One upstream try: the undici dispatch handler (the legacy onConnect/onHeaders/onData/
// onComplete/onError contract, which undici runs natively), its per-try timer, its endpoint and
// the admission (circuit breaker) accounting. A try that usher abandons (a per-try timeout, a 5xx
// it retries, a client gone) may still be called later — undici tears the connection down
// asynchronously — so a try that is no longer its exchange's current one drops everything.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { classifyUpstreamError, type ReasonCode } from '../errors/index.js';
import type { Admission } from '../upstream/admission.js';
import type { Endpoint } from '../upstream/endpoint.js';

/** What a try reports to the exchange that runs it. */
export interface TryOwner {
  current: Attempt | null;
  /** Response headers went downstream (a failure now resets the stream). */
  readonly responseStarted: boolean;
  tryHeaders(t: Attempt, statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean;
  tryUpgrade(t: Attempt, statusCode: number, rawHeaders: Buffer[] | string[], socket: Socket): void;
  tryData(t: Attempt, chunk: Buffer): boolean;
  tryComplete(t: Attempt, trailers: readonly (Buffer | string)[] | null): void;
  tryFailed(t: Attempt, reason: ReasonCode, err: unknown): void;
  /** The try has a connection (called only when `startedAt` was set: someone measures the wait). */
  tryConnected(t: Attempt): void;
}

/**
 * What a try abandoned before it had a connection throws when undici hands it one at last.
 * undici (client-h1 writeH1, client-h2 writeH2) catches it and fails that request alone: its
 * handler's onError, which is ignored here, and the request leaves the queue unsent. Calling
 * abort() instead would also destroy the request body — the downstream request stream, which
 * a retry may be streaming to another server at that moment — and the fresh connection.
 * Pinned by test/integration/retry-safety.test.ts.
 */
const ABANDONED = new Error('usher: try abandoned before it was sent');

export class Attempt {
  readonly owner: TryOwner;
  readonly endpoint: Endpoint;
  private readonly admission: Admission | null;
  /** undici handed this try a connected socket (onConnect): bytes may have reached the upstream. */
  connected = false;
  /** Holding its endpoint and admission slot: not yet complete, failed or stopped. */
  active = true;
  private abortFn: ((err?: Error) => void) | null = null;
  /** retry.per_try_timeout: the clock this try is armed on (tryClock); null when not armed. */
  clock: TryClock | null = null;
  /** When the try was ready to go (performance.now() ms), set only while the wait is measured; 0 otherwise. */
  startedAt = 0;
  /** When the per-try timeout expires (performance.now() ms), while armed. */
  deadline = 0;
  /** Neighbours in its clock's list while armed. */
  prev: Attempt | null = null;
  next: Attempt | null = null;

  constructor(owner: TryOwner, endpoint: Endpoint, admission: Admission | null) {
    this.owner = owner;
    this.endpoint = endpoint;
    this.admission = admission;
    endpoint.inflight++;
    if (admission !== null) admission.inflight++;
  }

  /** Gives back the endpoint and admission slot (once). */
  release(): void {
    if (!this.active) return;
    this.active = false;
    this.clearTimer();
    this.endpoint.inflight--;
    const admission = this.admission;
    if (admission !== null) {
      admission.inflight--;
      admission.released();
    }
  }

  /** Abandons the try: releases it and closes its upstream request if it has one. */
  stop(): void {
    const abort = this.abortFn;
    this.abortFn = null;
    this.release();
    if (abort !== null) abort();
  }

  /** Starts (or restarts) the per-try timeout: `expired` is called with this try after `ms`. */
  armTimer(ms: number, expired: (t: Attempt) => void): void {
    this.clearTimer();
    tryClock(ms, expired).arm(this);
  }

  clearTimer(): void {
    if (this.clock !== null) this.clock.disarm(this);
  }

  // ---- undici handler ------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.owner.current !== this || !this.active) throw ABANDONED;
    this.abortFn = abort;
    this.connected = true;
    if (this.startedAt > 0) this.owner.tryConnected(this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.owner.current !== this || !this.active) return false;
    const more = this.owner.tryHeaders(this, statusCode, rawHeaders, resume);
    // A 204 or 304 ends at its head (RFC 9110 §6.4.1): complete the try now. undici checks a
    // Content-Length against the bytes read when the message ends, so a 304 with one (allowed,
    // §8.6) or a 204 with one (a sender's error) failed there, after the head was taken, and the
    // client got a reset instead of the answer. undici then closes that connection itself.
    if ((statusCode === 204 || statusCode === 304) && this.owner.current === this && this.active) this.onComplete(null);
    return more;
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[], socket: Socket): void {
    if (this.owner.current !== this || !this.active) {
      socket.destroy();
      return;
    }
    this.abortFn = null;
    this.release();
    this.owner.tryUpgrade(this, statusCode, rawHeaders, socket);
  }

  onData(chunk: Buffer): boolean {
    return this.owner.current === this ? this.owner.tryData(this, chunk) : false;
  }

  // undici's types say string[]; at runtime the legacy handler receives Buffers. Accept both.
  onComplete(trailers: readonly (Buffer | string)[] | null): void {
    if (this.owner.current !== this || !this.active) return;
    this.abortFn = null;
    this.release();
    this.owner.tryComplete(this, trailers);
  }

  onError(err: Error): void {
    // Stopped by usher itself (the reason is already set), or no longer the current try.
    if (this.owner.current !== this || !this.active) return;
    this.abortFn = null;
    this.release();
    this.owner.tryFailed(this, classifyUpstreamError(err, this.owner.responseStarted), err);
  }
}

/**
 * Per-try timeouts without a Timeout object per try. One per_try_timeout value is shared by
 * many tries, and tries armed with the same duration expire in the order they were armed: so
 * the armed tries of one duration form a list in that order, and one timer waits for its head —
 * what node's own timer lists do (lib/internal/timers.js), minus the Timeout allocation, its
 * async-hooks bookkeeping and the list insert and unlink of every try.
 */
class TryClock {
  private head: Attempt | null = null;
  private tail: Attempt | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ms: number,
    private readonly expired: (t: Attempt) => void,
  ) {}

  arm(t: Attempt): void {
    t.clock = this;
    t.deadline = performance.now() + this.ms;
    t.prev = this.tail;
    t.next = null;
    if (this.tail !== null) this.tail.next = t;
    else this.head = t;
    this.tail = t;
    // Ref'd like the Timeout per try was: an armed try keeps the process alive.
    if (this.timer === null) this.timer = setTimeout(onClock, this.ms, this);
  }

  disarm(t: Attempt): void {
    if (t.prev !== null) t.prev.next = t.next;
    else this.head = t.next;
    if (t.next !== null) t.next.prev = t.prev;
    else this.tail = t.prev;
    t.prev = t.next = null;
    t.clock = null;
    // The timer stays: when it fires it waits for the new head, or stops if none is left.
    if (this.head === null && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  fire(): void {
    this.timer = null;
    // Timers run on the event loop's millisecond clock: a deadline within 1 ms is due.
    const now = performance.now() + 1;
    let t = this.head;
    while (t !== null && t.deadline <= now) {
      this.disarm(t);
      this.expired(t);
      t = this.head;
    }
    if (t !== null && this.timer === null) this.timer = setTimeout(onClock, Math.max(1, Math.ceil(t.deadline - performance.now())), this);
  }
}

function onClock(clock: TryClock): void {
  clock.fire();
}

const clocks = new Map<number, TryClock>();

function tryClock(ms: number, expired: (t: Attempt) => void): TryClock {
  let c = clocks.get(ms);
  if (c === undefined) clocks.set(ms, (c = new TryClock(ms, expired)));
  return c;
}
