// One upstream try: the undici dispatch handler (the legacy onConnect/onHeaders/onData/
// onComplete/onError contract, which undici runs natively), its per-try timer, its endpoint and
// the admission (circuit breaker) accounting. A try that usher abandons (a per-try timeout, a 5xx
// it retries, a client gone) may still be called later — undici tears the connection down
// asynchronously — so a try that is no longer its exchange's current one drops everything.
import type { Socket } from 'node:net';
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
  /** retry.per_try_timeout; null without one. */
  timer: NodeJS.Timeout | null = null;

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

  clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // ---- undici handler ------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.owner.current !== this || !this.active) throw ABANDONED;
    this.abortFn = abort;
    this.connected = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    return this.owner.current === this && this.active ? this.owner.tryHeaders(this, statusCode, rawHeaders, resume) : false;
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
