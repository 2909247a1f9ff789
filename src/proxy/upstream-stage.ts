// The upstream side of an exchange: admission (the circuit breaker's queue), one Attempt per
// try (attempt.ts), the upstream's head and body on their way downstream, and after a failure
// the pure retry decision (retry-decision.ts). The response phases themselves are the
// Exchange's (exchange.ts): a head that arrives goes to proxiedHead().
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { ReasonCode } from '../errors/index.js';
import {
  connectErrorChannel,
  retryChannel,
  upstreamConnectedChannel,
  upstreamResponseChannel,
  upstreamTryChannel,
  type ConnectErrorEvent,
  type RetryEvent,
  type UpstreamConnectedEvent,
  type UpstreamResponseEvent,
  type UpstreamTryEvent,
} from '../observability/events.js';
import type { Filter, UpstreamRequestHead } from '../pipeline/types.js';
import type { PickContext } from '../upstream/balancer.js';
import type { Endpoint } from '../upstream/endpoint.js';
import { Attempt, type RawFields, type TryOwner } from './attempt.js';
import { ExchangeContext } from './context.js';
import { bodyStillArriving, lingerAfterEarlyResponse } from './early-response.js';
import { filterResponseHeaders, trailersObject } from './headers.js';
import { relayInterim } from './interim.js';
import { decideRetry, usesBudget, type RetryFacts } from './retry-decision.js';
import { holdUpstream, tunnelHead, upgradeOf } from './upgrade.js';

export abstract class UpstreamStage extends ExchangeContext implements PickContext, TryOwner {
  exclude: Set<Endpoint> | undefined = undefined;
  hashKey: string | undefined = undefined;
  /** Response headers are committed to (a failure from here resets the stream). */
  responseStarted = false;
  /** Waiting for a replay buffer before the first try. */
  protected awaitingBuffer = false;
  protected upstreamHead: UpstreamRequestHead | undefined = undefined;
  protected hostIndex = -1;
  protected retryTimer: NodeJS.Timeout | null = null;
  /** Circuit breaker queue: the wait timer (set while queued), and whether it was ever queued. */
  queueTimer: NodeJS.Timeout | null = null;
  protected queued = false;
  /** When the request was ready for its first try (performance.now() ms), taken only while the queue time is measured. */
  private readyAt = 0;

  protected upstreamResume: (() => void) | null = null;
  /** The upstream's socket after its 101, while the tunnel head is in the response phase. */
  protected tunnelUpstream: Socket | null = null;
  /** Inside pool.dispatch(): an error undici reports now was raised before any connection. */
  private dispatching = false;
  /** The upstream's head as received: to tell, if node:http refuses the head, whose fault it is. */
  protected upstreamStatus = 0;
  protected upstreamRaw: RawFields | null = null;
  /**
   * The upstream response completed while its head was still in an async hook (undefined: not
   * so; null: completed without trailers). undici does not pause a HEAD response: client-h1's
   * onHeadersComplete returns "skip the body" for HEAD before it looks at the handler's pause,
   * and onMessageComplete follows at once.
   */
  protected earlyComplete: readonly (Buffer | string)[] | null | undefined = undefined;

  /** The first response_body transform; data goes through it instead of straight downstream. */
  protected sink: Writable | null = null;

  /**
   * The upstream body read and held for a response_inspect hook (null: none held), its size,
   * and the bound asked for: beyond it the upstream is paused and the hook runs.
   */
  protected held: Buffer[] | null = null;
  protected heldBytes = 0;
  protected holdLimit = 0;
  private holdOver = false;
  /** The response_inspect hooks have run on this attempt's head; which asked for the body, with their bounds (exchange.ts). */
  protected inspected = false;
  protected inspectors: Array<{ f: Filter; n: number }> | null = null;

  protected dispatch(): void {
    const cluster = this.cluster!;
    // A new attempt inspects and holds its own response (none retries after a held head today:
    // retry.ts refuses upstream_bad_response once connected; this keeps a later change safe).
    if (this.inspected) {
      this.inspected = false;
      this.inspectors = null;
      this.held = null;
      this.heldBytes = 0;
      this.holdOver = false;
    }
    if (this.readyAt === 0 && upstreamConnectedChannel.hasSubscribers) this.readyAt = performance.now();
    const admission = cluster.admission;
    if (admission !== null && this.attempt === 0 && !this.queued) {
      const verdict = admission.admit(this);
      if (verdict === 'queued') {
        this.queued = true;
        this.state = 'queued';
        return;
      }
      if (verdict === 'overloaded') return this.fail('upstream_overloaded');
    }
    const endpoint = cluster.pick(this);
    if (endpoint === undefined) {
      this.fail(this.attempt === 0 ? 'no_upstream_server' : this.reason ?? 'no_upstream_server');
      return;
    }
    this.state = 'trying';
    const t = (this.current = new Attempt(this, endpoint, admission));
    // A first try's wait includes the circuit breaker's queue; a retry's starts now.
    if (this.readyAt > 0) t.startedAt = this.attempt === 0 ? this.readyAt : performance.now();
    const host = cluster.hostFor(endpoint);
    if (host !== undefined && this.hostIndex >= 0) this.upstreamHeaders[this.hostIndex] = host;
    const perTry = cluster.retry.perTryTimeout;
    if (perTry !== null) t.armTimer(perTry, onTryTimeout);
    if (upstreamTryChannel.hasSubscribers) {
      upstreamTryChannel.publish({ server: this.owner, ctx: this, upstream: cluster.name, upstreamServer: endpoint.id, cluster, endpoint, attempt: this.attempt, method: this.req.method!, target: this.upstreamHead!.target, headers: this.upstreamHeaders } satisfies UpstreamTryEvent);
    }
    const body = this.body;
    this.dispatching = true;
    try {
      // undici's Pool or the native one (engine: native), which takes the same options and handler.
      (endpoint.dispatcher as Pool).dispatch(
        // servername: honoured by undici's Request (lib/core/request.js), missing from its types.
        // checkHead: the native client checks only heads that upstream_request filters edited.
        {
          path: this.upstreamHead!.target,
          method: this.req.method as Dispatcher.HttpMethod,
          headers: this.upstreamHeaders,
          body: body === null ? null : (body.buffer ?? body.stream),
          upgrade: upgradeOf(this.req),
          servername: endpoint.servername,
          checkHead: this.route!.phases.upstreamRequest.length > 0,
        } as Dispatcher.DispatchOptions,
        t,
      );
    } finally {
      this.dispatching = false;
    }
  }

  // Waiter (circuit breaker queue)
  admitted(): void {
    if (!this.downstreamGone && !this.res.headersSent) this.dispatch();
  }

  overloaded(): void {
    if (!this.downstreamGone) this.fail('upstream_overloaded');
  }

  tryHeaders(t: Attempt, statusCode: number, rawHeaders: RawFields, resume: () => void): boolean {
    if (statusCode < 200) {
      // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
      if (this.req.httpVersionMinor >= 1 || this.req.httpVersionMajor > 1) relayInterim(this.res, statusCode, rawHeaders, this.runtime.forward);
      return true;
    }
    t.clearTimer();
    if (statusCode >= 500 && this.retryStatus(t, statusCode)) return false;
    this.responseStarted = true;
    const cluster = this.cluster!;
    cluster.observeStatus(t.endpoint, statusCode);
    if (upstreamResponseChannel.hasSubscribers) {
      upstreamResponseChannel.publish({ server: this.owner, ctx: this, upstream: cluster.name, upstreamServer: t.endpoint.id, cluster, endpoint: t.endpoint, status: statusCode } satisfies UpstreamResponseEvent);
    }
    const fwd = this.runtime.forward;
    const headers: string[] = [];
    filterResponseHeaders(rawHeaders, fwd, headers);
    // Received from the upstream: over HTTP/2 when the upstream is marked h2/h2c (an h2 server
    // that refuses h2 by ALPN is still reported as 2; undici does not tell).
    const via = cluster.config.protocol === 'http1' ? fwd.via : fwd.via2;
    if (via !== null) headers.push('via', via);
    headers.push(fwd.requestIdHeader, this.requestId);
    const sticky = cluster.stickyCookie(t.endpoint, this.hashKey);
    if (sticky !== undefined) headers.push('set-cookie', sticky);
    this.response = { status: statusCode, headers, local: false };
    this.upstreamStatus = statusCode;
    this.upstreamRaw = rawHeaders;
    this.upstreamResume = resume;
    this.state = 'response';
    return this.proxiedHead('upstream_response', 0);
  }

  tryUpgrade(t: Attempt, statusCode: number, rawHeaders: RawFields, socket: Socket): void {
    if (this.downstreamGone) {
      socket.destroy();
      return;
    }
    this.cluster!.observeStatus(t.endpoint, statusCode);
    this.responseStarted = true;
    holdUpstream(this, socket);
    this.tunnelUpstream = socket;
    this.response = tunnelHead(this, statusCode, rawHeaders);
    this.state = 'response';
    this.upgradeHead(0);
  }

  tryData(_t: Attempt, chunk: Buffer): boolean {
    if (this.held !== null) return this.holdChunk(chunk);
    const sink = this.sink ?? this.res;
    if (sink.write(chunk)) return true;
    if (this.res.destroyed) return false;
    sink.once('drain', this.upstreamResume!);
    return false;
  }

  tryComplete(_t: Attempt, trailers: readonly (Buffer | string)[] | null): void {
    if (this.state === 'response') {
      // The head is not written yet (an async hook): finish once it is (Exchange.headWritten).
      this.earlyComplete = trailers;
      // The whole body was held: the inspecting hook runs on it now.
      if (this.held !== null && !this.holdOver) this.bodyHeld(true);
      return;
    }
    // Complete before the whole upload arrived: a lingering close after it (early-response.ts).
    if (bodyStillArriving(this.req, this.body !== null && this.body.stream !== null)) lingerAfterEarlyResponse(this.req, this.res, this.socket);
    if (this.sink !== null) {
      // A transformed body ends with the transform; trailers described the original bytes.
      this.sink.end();
      return;
    }
    // HTTP/1.1 upstreams give trailers as a flat array, HTTP/2 ones as an object.
    if (trailers !== null && (trailers.length > 0 || !Array.isArray(trailers))) this.res.addTrailers(trailersObject(trailers));
    this.res.end();
  }

  /** A chunk while the body is held: kept; past the bound, the upstream pauses and the hook runs. */
  private holdChunk(chunk: Buffer): boolean {
    this.held!.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes <= this.holdLimit) return true;
    if (this.holdOver) return false;
    this.holdOver = true;
    // After this returns: the upstream client marks itself paused only once onData said false,
    // and the hook's go-ahead resumes it (a resume before the pause would be lost).
    queueMicrotask(() => this.bodyHeld(false));
    return false;
  }

  tryFailed(t: Attempt, reason: ReasonCode, err: unknown): void {
    if ((reason === 'internal_error' || this.dispatching) && !this.owner.cutting) {
      // undici refused the head as built (UND_ERR_INVALID_ARG, or a TypeError on a field that is
      // not a string) before any connection: usher's or a filter's fault. No penalty, no retry.
      this.owner.headRefused(this, (this.route?.phases.upstreamRequest ?? []).map((f) => f.name), err);
      return this.fail('internal_error');
    }
    this.cluster!.observeFailure(t.endpoint, reason, t.connected);
    if (!t.connected && connectErrorChannel.hasSubscribers) {
      connectErrorChannel.publish({ server: this.owner, ctx: this, upstream: this.cluster!.name, upstreamServer: t.endpoint.id, cluster: this.cluster!, endpoint: t.endpoint, reason } satisfies ConnectErrorEvent);
    }
    this.upstreamFailed(t, reason, err);
  }

  tryConnected(t: Attempt): void {
    if (upstreamConnectedChannel.hasSubscribers) {
      const cluster = this.cluster!;
      upstreamConnectedChannel.publish({ server: this.owner, ctx: this, upstream: cluster.name, cluster, endpoint: t.endpoint, attempt: this.attempt, waitMs: performance.now() - t.startedAt } satisfies UpstreamConnectedEvent);
    }
  }

  /** retry.per_try_timeout expired before the response head: abandon this try. */
  tryTimedOut(t: Attempt): void {
    if (this.current !== t || !t.active || this.responseStarted) return;
    // Connected and still streaming the client's body: the clock restarts when it ends (bodyEnded).
    const body = this.body;
    if (t.connected && body !== null && body.stream !== null && !body.complete) return;
    const connected = t.connected;
    t.stop();
    // Without a connection yet nothing was sent: that is a connect timeout, always retryable.
    const reason = connected ? 'upstream_timeout' : 'upstream_connect_timeout';
    this.cluster!.observeFailure(t.endpoint, reason, connected);
    this.upstreamFailed(t, reason, null);
  }

  protected retryFacts(t: Attempt, reason: ReasonCode, status: number | undefined): RetryFacts {
    const cluster = this.cluster!;
    (this.exclude ??= new Set()).add(t.endpoint);
    return {
      reason,
      status,
      connected: t.connected,
      responseStarted: this.responseStarted,
      method: this.req.method!,
      bodyReplayable: this.body === null || this.body.replayable,
      attempt: this.attempt,
      policy: cluster.retry,
      untried: cluster.hasUntried(this.exclude),
      budgetLeft: cluster.retry.budget.available(),
    };
  }

  protected upstreamFailed(t: Attempt, reason: ReasonCode, _err: unknown): void {
    if (this.downstreamGone) return;
    if (this.owner.cutting) reason = 'shutting_down';
    const facts = this.retryFacts(t, reason, undefined);
    const decision = decideRetry(facts);
    this.reason = reason;
    if (decision !== 'no') {
      if (usesBudget(facts)) this.cluster!.retry.budget.tryAcquire();
      this.scheduleRetry(reason, decision === 'backoff');
      return;
    }
    if (this.res.headersSent) {
      // Never end a truncated response as if it were complete: reset the downstream stream.
      this.res.destroy();
      return;
    }
    this.fail(reason, this.body !== null && this.body.stream !== null && !this.body.complete);
  }

  /** A 5xx head arrived (nothing went downstream yet): drop it and retry if allowed. */
  protected retryStatus(t: Attempt, status: number): boolean {
    const facts = this.retryFacts(t, 'upstream_bad_response', status);
    if (decideRetry(facts) === 'no') return false;
    this.cluster!.retry.budget.tryAcquire();
    this.cluster!.observeStatus(t.endpoint, status);
    // Closing the connection is the only way to skip an unread body without reading it.
    t.stop();
    this.scheduleRetry('upstream_bad_response', true, status);
    return true;
  }

  protected scheduleRetry(reason: ReasonCode, backoff: boolean, status: number | null = null): void {
    this.attempt++;
    if (retryChannel.hasSubscribers) retryChannel.publish({ server: this.owner, ctx: this, upstream: this.cluster!.name, cluster: this.cluster!, reason, attempt: this.attempt, backoff, status } satisfies RetryEvent);
    const delay = backoff ? this.cluster!.retry.backoff(this.attempt) : 0;
    if (delay <= 0) return this.dispatch();
    this.state = 'backoff';
    this.retryTimer = setTimeout(onRetryTimer, delay, this);
  }

  /** The backoff before a retry is over. */
  retryNow(): void {
    this.retryTimer = null;
    if (!this.downstreamGone && !this.res.headersSent) this.dispatch();
  }

  /**
   * The downstream request body has all arrived. A body streaming from a slow client is not the
   * upstream's delay: a connected try's per-try clock (re)starts now, as Envoy's per_try_timeout
   * starts once the downstream request is complete. (Waiting for a connection stays timed.)
   */
  bodyEnded(): void {
    const t = this.current;
    const perTry = this.cluster?.retry.perTryTimeout ?? null;
    if (perTry === null || t === null || !t.active || this.responseStarted) return;
    t.armTimer(perTry, onTryTimeout);
  }

  protected stopUpstream(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.queueTimer !== null) this.cluster!.admission?.withdraw(this);
    if (this.current?.active) this.current.stop();
  }

  /** The held body reached its bound or its end (`complete`): the response_inspect hooks judge it (exchange.ts). */
  protected abstract bodyHeld(complete: boolean): void;
  /** Ends the request with usher's own reply for `reason` (exchange.ts). */
  abstract fail(reason: ReasonCode, close?: boolean): void;
  /** The upstream's head through upstream_response and response; false pauses undici (exchange.ts). */
  protected abstract proxiedHead(phase: 'upstream_response' | 'response', from: number): boolean;
  /** The tunnel head (ex.response, after a 101) through the response phase, then the tunnel (exchange.ts). */
  protected abstract upgradeHead(from: number): void;
}

function onTryTimeout(t: Attempt): void {
  (t.owner as UpstreamStage).tryTimedOut(t);
}

function onRetryTimer(ex: UpstreamStage): void {
  ex.retryNow();
}
