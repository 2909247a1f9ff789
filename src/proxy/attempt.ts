// One upstream try: the undici dispatch handler (the legacy onConnect/onHeaders/onData/
// onComplete/onError contract, which undici runs natively and the native client in
// src/upstream/h1 speaks too), its per-try timer, its endpoint and
// the admission (circuit breaker) accounting. A try that usher abandons (a per-try timeout, a 5xx
// it retries, a client gone) may still be called later — undici tears the connection down
// asynchronously — so a try that is no longer its exchange's current one drops everything.
import type { Socket } from 'node:net';
import { classifyUpstreamError, type ReasonCode } from '../errors/index.js';
import type { Admission } from '../upstream/admission.js';
import type { Endpoint } from '../upstream/endpoint.js';
import { Clock, type Timed } from '../util/clock.js';

/** A response head's fields as a client gives them: undici's Buffer pairs, the native client's latin1 strings. */
export type RawFields = readonly (Buffer | string)[];

/** What a try reports to the exchange that runs it. */
export interface TryOwner {
  current: Attempt | null;
  /** Response headers went downstream (a failure now resets the stream). */
  readonly responseStarted: boolean;
  tryHeaders(t: Attempt, statusCode: number, rawHeaders: RawFields, resume: () => void): boolean;
  tryUpgrade(t: Attempt, statusCode: number, rawHeaders: RawFields, socket: Socket): void;
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

export class Attempt implements Timed {
  readonly owner: TryOwner;
  readonly endpoint: Endpoint;
  private readonly admission: Admission | null;
  /** undici handed this try a connected socket (onConnect): bytes may have reached the upstream. */
  connected = false;
  /** Holding its endpoint and admission slot: not yet complete, failed or stopped. */
  active = true;
  private abortFn: ((err?: Error) => void) | null = null;
  /** retry.per_try_timeout: the clock this try is armed on (tryClock); null when not armed. */
  clock: Clock<Attempt> | null = null;
  /** When the try was ready to go (performance.now() ms), set only while the wait is measured; 0 otherwise. */
  startedAt = 0;
  /** When the per-try timeout expires (performance.now() ms), while armed. */
  deadline = 0;
  /** Neighbours in its clock's list while armed. */
  prevTimed: Timed | null = null;
  nextTimed: Timed | null = null;

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

  onHeaders(statusCode: number, rawHeaders: RawFields, resume: () => void): boolean {
    if (this.owner.current !== this || !this.active) return false;
    const more = this.owner.tryHeaders(this, statusCode, rawHeaders, resume);
    // A 204 or 304 ends at its head (RFC 9110 §6.4.1): complete the try now. undici checks a
    // Content-Length against the bytes read when the message ends, so a 304 with one (allowed,
    // §8.6) or a 204 with one (a sender's error) failed there, after the head was taken, and the
    // client got a reset instead of the answer. undici then closes that connection itself.
    // Nothing more can come for this try, so undici is never left paused: a head held in an
    // async upstream_response hook returned false (pause), and the resume it would call later
    // never comes once the try is complete — the connection stayed busy until undici's body
    // timeout, and a graceful close waited as long (30 s).
    if ((statusCode === 204 || statusCode === 304) && this.owner.current === this && this.active) {
      this.onComplete(null);
      return true;
    }
    return more;
  }

  onUpgrade(statusCode: number, rawHeaders: RawFields | null, socket: Socket): void {
    if (this.owner.current !== this || !this.active) {
      socket.destroy();
      return;
    }
    this.abortFn = null;
    this.release();
    this.owner.tryUpgrade(this, statusCode, rawHeaders ?? [], socket);
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
 * Per-try timeouts without a Timeout object per try: one deadline list per per_try_timeout
 * value (src/util/clock.ts), so arming a try is a link at the tail of its list.
 */
const clocks = new Map<number, Clock<Attempt>>();

function tryClock(ms: number, expired: (t: Attempt) => void): Clock<Attempt> {
  let c = clocks.get(ms);
  // Ref'd like the Timeout per try was: an armed try keeps the process alive.
  if (c === undefined) clocks.set(ms, (c = new Clock(ms, expired, true)));
  return c;
}
