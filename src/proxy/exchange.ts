// The terminal stage: one Exchange per downstream request. It is the request context the phases
// see, and it is itself the undici dispatch handler (the legacy onConnect/onHeaders/onData/
// onComplete/onError contract, which undici runs natively; the newer one is wrapped onto it).
// No closures are allocated per request: event listeners are module-level functions that find
// their Exchange through a symbol on the emitter.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyUpstreamError, REASONS, type ReasonCode } from '../errors/index.js';
import { isAcceptableRequestId, newRequestId } from '../observability/request-id.js';
import type { CompiledRoute, RequestContext } from '../pipeline/types.js';
import type { Runtime } from '../server/runtime.js';
import type { Cluster } from '../upstream/cluster.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { PickContext } from '../upstream/balancer.js';
import { Attempt } from './attempt.js';
import { BodyLimit } from './body-limit.js';
import { filterResponseHeaders, forwardedNode, RequestHead, scanRequestHeaders, trailersObject, type ForwardSettings } from './headers.js';
import { sendLocalReply, wantsJson } from './local-reply.js';
import { grpcTrailersOnly, isGrpc, sendGrpcLocalReply } from './grpc.js';
import { openTunnel, upgradeOf } from './upgrade.js';

export const kExchange = Symbol('usher.exchange');

type WithExchange<T> = T & { [kExchange]?: Exchange };

/** What the exchange needs from the server that owns it. */
export interface ExchangeOwner {
  draining: boolean;
  exchangeDone(ex: Exchange): void;
}

/** RFC 9110 §9.2.2: methods whose effect is the same however often they are applied. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export class Exchange implements RequestContext, PickContext {
  readonly owner: ExchangeOwner;
  readonly runtime: Runtime;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Kept here: node:http detaches req.socket once the response is done. */
  readonly socket: Socket;
  readonly head = new RequestHead();
  readonly requestId: string;
  readonly clientIp: string;
  readonly startedAt = performance.now();
  route: CompiledRoute | undefined = undefined;
  /**
   * The upstream this request goes to, chosen once before proxying (the route's, or one side of a
   * traffic split). Retries stay on it.
   */
  cluster: Cluster | undefined = undefined;
  reason: ReasonCode | undefined = undefined;

  /** Upstream head being built: flat name/value pairs. */
  private readonly upstreamHeaders: string[] = [];
  private hostIndex = -1;
  /** The Host the route sends (before a cluster's host_header: upstream), for upstreamHead(). */
  private routeHost: string | undefined = undefined;
  /** Request target in origin-form. */
  path = '';
  endpoint: Endpoint | undefined = undefined;
  attempt = 0;
  exclude: Set<Endpoint> | undefined = undefined;
  /** The balancer's key (balance: hash / sticky), read once per request. */
  hashKey: string | undefined = undefined;
  private body: Readable | null = null;
  /** A request body read in full so that a retry can replay it (retry.buffer_body). */
  private bodyBuffer: Buffer | null = null;
  private bufferChunks: Buffer[] | null = null;
  /** The handler of the current try when it has its own (retry.per_try_timeout); null otherwise. */
  current: Attempt | null = null;
  /** Per-try timeout or retry backoff (never both at once). */
  private timer: NodeJS.Timeout | null = null;
  /** Circuit breaker queue: the wait timer (set while queued), and whether it was ever queued. */
  queueTimer: NodeJS.Timeout | null = null;
  private queued = false;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private upstreamActive = false;
  /** undici handed this attempt a connected socket (onConnect): bytes may have reached the upstream. */
  private attemptConnected = false;
  private responseStarted = false;
  private downstreamGone = false;
  private finished = false;

  constructor(owner: ExchangeOwner, runtime: Runtime, req: IncomingMessage, res: ServerResponse) {
    this.owner = owner;
    this.runtime = runtime;
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    const fwd = runtime.forward;
    scanRequestHeaders(req.rawHeaders, fwd, this.head, this.upstreamHeaders);
    this.clientIp = this.socket.remoteAddress ?? '';
    const trusted = fwd.trusted !== null && this.clientIp !== '' && fwd.trusted.check(this.clientIp, this.clientIp.includes(':') ? 'ipv6' : 'ipv4');
    const incomingId = this.head.requestId;
    this.requestId = trusted && incomingId !== undefined && isAcceptableRequestId(incomingId) ? incomingId : newRequestId();
    (res as WithExchange<ServerResponse>)[kExchange] = this;
    res.on('close', onDownstreamClose);
    if (!trusted) {
      this.head.xff = this.head.xfp = this.head.xfh = this.head.forwarded = undefined;
    }
  }

  // ---- local answers -------------------------------------------------------------------------

  /** Ends the request with a local reply for `reason` (or resets the stream if headers went out). */
  fail(reason: ReasonCode, close = false): void {
    this.reason = reason;
    this.clearTimer();
    if (this.queueTimer !== null) this.cluster!.admission?.withdraw(this);
    if (this.upstreamActive) this.stopUpstream();
    // gRPC clients read grpc-status, not an HTML/JSON body (gRPC over HTTP/2: Trailers-Only).
    // gRPC is HTTP/2 only; req.headers (built lazily by node) is not touched on HTTP/1.1.
    if (this.req.httpVersionMajor === 2 && isGrpc(this.req)) return sendGrpcLocalReply(this.res, reason, this.requestId, this.runtime.forward.requestIdHeader);
    sendLocalReply(this.res, reason, this.requestId, this.runtime.forward.requestIdHeader, wantsJson(this.req.rawHeaders), close || this.owner.draining);
  }

  /** Answers from a `respond:` route or a request filter's LocalResponse. */
  respond(status: number, headers: readonly string[], body: string | Buffer | undefined): void {
    this.reason = 'local_response';
    if (this.owner.draining) this.res.shouldKeepAlive = false;
    this.res.writeHead(status, [...headers, this.runtime.forward.requestIdHeader, this.requestId]);
    this.res.end(body);
  }

  // ---- upstream ------------------------------------------------------------------------------

  /** Starts proxying: `hasBody` says whether the downstream request carries a body. */
  proxy(cluster: Cluster, path: string, hasBody: boolean): void {
    this.cluster = cluster;
    this.path = path;
    this.hashKey = cluster.hashKeyOf(this.req.rawHeaders, path, this.clientIp);
    cluster.retry.budget.noteRequest();
    if (hasBody) {
      (this.req as WithExchange<IncomingMessage>)[kExchange] = this;
      const limit = this.runtime.config.limits.body;
      const length = this.head.contentLength;
      if (length !== undefined && cluster.retry.attempts > 0 && Number(length) <= cluster.retry.bufferBody && IDEMPOTENT.has(this.req.method!)) {
        // Small enough to keep: read it whole, then send it (and replay it on a retry).
        this.bufferChunks = [];
        this.req.on('data', onBufferData);
        this.req.on('end', onBufferEnd);
      } else if (limit !== null && this.head.contentLength === undefined) {
        const counted = new BodyLimit(limit, () => this.bodyTooLarge());
        pipeline(this.req, counted, ignoreError);
        this.body = counted;
      } else {
        this.body = this.req;
      }
      // On the request, not the socket: on HTTP/2 the socket is the whole session's.
      this.req.setTimeout(this.runtime.config.timeouts.body_idle);
      this.req.on('timeout', onBodyIdle);
      this.req.on('end', onBodyEnd);
    }
    this.appendForwardingHeaders();
    // TE is hop-by-hop and dropped, but gRPC servers expect "te: trailers" (RFC 9110 §10.1.4),
    // and usher does relay trailers.
    if (cluster.config.protocol !== 'http1' && isGrpc(this.req)) this.upstreamHeaders.push('te', 'trailers');
    // Once per request, not per attempt: a retry re-sends the same edited head.
    const filters = this.route!.upstreamRequestFilters;
    for (let i = 0; i < filters.length; i++) filters[i]!.onUpstreamRequest!(this, this.upstreamHeaders);
    // A filter may have removed fields before Host: find it again (usher's own is the only "host").
    if (filters.length > 0) this.hostIndex = hostValueIndex(this.upstreamHeaders);
    if (this.route!.mirror !== undefined && this.hostIndex >= 0) this.routeHost = this.upstreamHeaders[this.hostIndex];
    if (this.bufferChunks === null) this.dispatch();
  }

  bodyChunk(chunk: Buffer): void {
    this.bufferChunks?.push(chunk);
  }

  bodyBuffered(): void {
    const chunks = this.bufferChunks;
    if (chunks === null) return;
    this.bufferChunks = null;
    this.bodyBuffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (!this.downstreamGone && this.reason === undefined) this.dispatch();
  }

  /**
   * A copy of the upstream head as the route sends it — forwarding headers (so a client cannot
   * forge X-Forwarded-For to the shadow either), header rules, host rewrite — with the Host from
   * before any cluster's host_header: upstream. For a mirror's copy (src/filters/mirror/).
   */
  upstreamHead(): string[] {
    const h = this.upstreamHeaders.slice();
    if (this.hostIndex >= 0 && this.routeHost !== undefined) h[this.hostIndex] = this.routeHost;
    return h;
  }

  private appendForwardingHeaders(): void {
    const h = this.upstreamHeaders;
    const head = this.head;
    const fwd = this.runtime.forward;
    const ip = this.clientIp;
    const proto = (this.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const host = head.host ?? '';
    this.hostIndex = h.length + 1;
    h.push('host', host);
    h.push('x-forwarded-for', head.xff === undefined ? ip : `${head.xff}, ${ip}`);
    h.push('x-forwarded-proto', head.xfp ?? proto);
    if (host !== '' || head.xfh !== undefined) h.push('x-forwarded-host', head.xfh ?? host);
    h.push('x-real-ip', head.xff === undefined ? ip : realClientIp(head.xff, ip, fwd.trusted));
    const node = host === '' ? `for=${forwardedNode(ip)};proto=${proto}` : `for=${forwardedNode(ip)};host="${quoted(host)}";proto=${proto}`;
    h.push('forwarded', head.forwarded === undefined ? node : `${head.forwarded}, ${node}`);
    // The received protocol is the downstream's (RFC 9110 §7.6.3): "2 usher" for HTTP/2.
    const via = this.req.httpVersionMajor === 2 ? fwd.via2 : fwd.via;
    if (via !== null) h.push('via', head.via === undefined ? via : `${head.via}, ${via}`);
    h.push(fwd.requestIdHeader, this.requestId);
  }

  private dispatch(): void {
    const cluster = this.cluster!;
    const admission = cluster.admission;
    if (admission !== null && this.attempt === 0 && !this.queued) {
      const verdict = admission.admit(this);
      if (verdict === 'queued') {
        this.queued = true;
        return;
      }
      if (verdict === 'overloaded') return this.fail('upstream_overloaded');
    }
    const endpoint = cluster.pick(this);
    if (endpoint === undefined) {
      this.fail(this.attempt === 0 ? 'no_upstream_server' : this.reason ?? 'no_upstream_server');
      return;
    }
    this.endpoint = endpoint;
    endpoint.inflight++;
    if (admission !== null) admission.inflight++;
    const host = cluster.hostFor(endpoint);
    if (host !== undefined) this.upstreamHeaders[this.hostIndex] = host;
    this.upstreamActive = true;
    this.attemptConnected = false;
    // Only a per-try timeout abandons a try that undici may still call later (it may not have a
    // connection, hence no abort, yet): only then does a try need a handler of its own. Every
    // other way a try ends goes through undici first (onError) or through abort(), after which
    // undici calls nothing more, so the exchange is the handler and a plain GET allocates nothing.
    const perTry = cluster.retry.perTryTimeout;
    if (perTry !== null) {
      this.current = new Attempt(this);
      this.timer = setTimeout(onTryTimeout, perTry, this);
    }
    endpoint.pool.dispatch(
      // servername: honoured by undici's Request (lib/core/request.js), missing from its types.
      { path: this.path, method: this.req.method as Dispatcher.HttpMethod, headers: this.upstreamHeaders, body: this.bodyBuffer ?? this.body, upgrade: upgradeOf(this.req), servername: endpoint.servername } as Dispatcher.DispatchOptions,
      perTry === null ? this : this.current!,
    );
  }

  // ---- circuit breaker queue (Waiter) --------------------------------------------------------

  admitted(): void {
    if (!this.downstreamGone && !this.res.headersSent) this.dispatch();
  }

  overloaded(): void {
    if (!this.downstreamGone) this.fail('upstream_overloaded');
  }

  private stopUpstream(): void {
    const abort = this.abortUpstream;
    this.abortUpstream = null;
    this.releaseEndpoint();
    if (abort !== null) abort();
  }

  private releaseEndpoint(): void {
    if (this.upstreamActive) {
      this.upstreamActive = false;
      this.current = null;
      this.clearTimer();
      this.endpoint!.inflight--;
      const admission = this.cluster!.admission;
      if (admission !== null) {
        admission.inflight--;
        admission.released();
      }
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // ---- undici handler (through the current Attempt) ------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.downstreamGone || !this.upstreamActive) {
      abort();
      return;
    }
    this.abortUpstream = abort;
    this.attemptConnected = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (!this.upstreamActive) return false;
    if (statusCode < 200) {
      // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
      if (this.req.httpVersionMinor >= 1 || this.req.httpVersionMajor > 1) relayInterim(this.res, statusCode, rawHeaders, this.runtime.forward);
      return true;
    }
    this.clearTimer();
    if (statusCode >= 500 && this.retryStatus(statusCode)) return false;
    this.responseStarted = true;
    this.resume = resume;
    this.cluster!.observeStatus(this.endpoint!, statusCode);
    const fwd = this.runtime.forward;
    const headers: string[] = [];
    filterResponseHeaders(rawHeaders, fwd, headers);
    // Received from the upstream: over HTTP/2 when the upstream is marked h2/h2c (an h2 server
    // that refuses h2 by ALPN is still reported as 2; undici does not tell).
    const via = this.cluster!.config.protocol === 'http1' ? fwd.via : fwd.via2;
    if (via !== null) headers.push('via', via);
    headers.push(fwd.requestIdHeader, this.requestId);
    const sticky = this.cluster!.stickyCookie(this.endpoint!, this.hashKey);
    if (sticky !== undefined) headers.push('set-cookie', sticky);
    const filters = this.route!.responseFilters;
    for (let i = 0; i < filters.length; i++) filters[i]!.onResponse!(this, statusCode, headers);
    if (this.owner.draining) this.res.shouldKeepAlive = false;
    try {
      // A gRPC Trailers-Only response (grpc-status in the head) must stay one HEADERS frame. Only
      // HTTP/2 requests can be gRPC: a plain HTTP/1.1 response never scans its fields for it.
      if (this.req.httpVersionMajor === 2 && isGrpc(this.req) && grpcTrailersOnly(this.res, statusCode, headers)) return true;
      // The standard reason phrase: undici decodes the upstream's as UTF-8, which node:http may refuse.
      this.res.writeHead(statusCode, headers);
    } catch (err) {
      // node:http refused a header or status line the upstream parser let through.
      this.responseStarted = false;
      this.stopUpstream();
      this.upstreamFailed('upstream_bad_response', err);
      return false;
    }
    return true;
  }

  private resume: (() => void) | null = null;

  /** The upstream answered 101 to an upgrade (WebSocket): from here it is a byte tunnel. */
  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[], socket: Socket): void {
    if (!this.upstreamActive || this.downstreamGone) {
      socket.destroy();
      return;
    }
    this.clearTimer();
    this.cluster!.observeStatus(this.endpoint!, statusCode);
    this.abortUpstream = null;
    this.releaseEndpoint();
    this.responseStarted = true;
    openTunnel(this, statusCode, rawHeaders, socket);
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    if (this.res.destroyed) return false;
    this.res.once('drain', this.resume!);
    return false;
  }

  // undici's types say string[]; at runtime the legacy handler receives Buffers. Accept both.
  onComplete(trailers: readonly (Buffer | string)[] | null): void {
    if (!this.upstreamActive) return;
    this.releaseEndpoint();
    this.abortUpstream = null;
    // HTTP/1.1 upstreams give trailers as a flat array, HTTP/2 ones as an object.
    if (trailers !== null && (trailers.length > 0 || !Array.isArray(trailers))) this.res.addTrailers(trailersObject(trailers));
    this.res.end();
  }

  onError(err: Error): void {
    if (!this.upstreamActive) return; // we aborted it ourselves: the reason is already set
    this.abortUpstream = null;
    this.releaseEndpoint();
    const reason = classifyUpstreamError(err, this.responseStarted);
    this.cluster!.observeFailure(this.endpoint!, reason, this.attemptConnected);
    this.upstreamFailed(reason, err);
  }

  /**
   * The downstream request body has all arrived. A body streaming from a slow client is not the
   * upstream's delay: a connected try's per-try clock (re)starts now, as Envoy's per_try_timeout
   * starts once the downstream request is complete. (Waiting for a connection stays timed.)
   */
  bodyEnded(): void {
    // On the request, not the socket: on HTTP/2 the socket is the whole session's.
    this.req.setTimeout(0);
    const perTry = this.cluster!.retry.perTryTimeout;
    if (perTry === null || !this.upstreamActive || this.responseStarted) return;
    this.clearTimer();
    this.timer = setTimeout(onTryTimeout, perTry, this);
  }

  /** retry.per_try_timeout expired before the response head: abandon this try. */
  tryTimedOut(): void {
    this.timer = null;
    if (!this.upstreamActive || this.responseStarted) return;
    // Connected and still streaming the client's body: the clock restarts when it ends (bodyEnded).
    if (this.attemptConnected && this.body !== null && !this.req.complete) return;
    const connected = this.attemptConnected;
    const endpoint = this.endpoint!;
    this.stopUpstream();
    // Without a connection yet nothing was sent: that is a connect timeout, always retryable.
    const reason = connected ? 'upstream_timeout' : 'upstream_connect_timeout';
    this.cluster!.observeFailure(endpoint, reason, connected);
    this.upstreamFailed(reason, null);
  }

  /** The backoff before a retry is over. */
  retryNow(): void {
    this.timer = null;
    if (!this.downstreamGone && !this.res.headersSent) this.dispatch();
  }

  private upstreamFailed(reason: ReasonCode, _err: unknown): void {
    if (this.downstreamGone) return;
    if (!this.responseStarted && this.retryable(reason)) {
      this.reason = reason;
      // A connection that failed sent nothing: go to the next server at once. Otherwise back off.
      this.scheduleRetry(this.attemptConnected);
      return;
    }
    this.reason = reason;
    if (this.res.headersSent) {
      // Never end a truncated response as if it were complete: reset the downstream stream.
      this.res.destroy();
      return;
    }
    this.fail(reason, this.body !== null && !this.req.complete);
  }

  private scheduleRetry(backoff: boolean): void {
    this.attempt++;
    const delay = backoff ? this.cluster!.retry.backoff(this.attempt) : 0;
    if (delay <= 0) this.dispatch();
    else this.timer = setTimeout(onRetryTimer, delay, this);
  }

  /**
   * Whether the failed try may be retried on another server. A connect failure never reached
   * the upstream application, so any request may go elsewhere (a streamed body was not read
   * yet). After a connection was made, only idempotent requests (RFC 9110 §9.2.2) whose body
   * can be replayed, on the configured failures, within the retry budget.
   */
  private retryable(reason: ReasonCode): boolean {
    if (!this.mayTryAnother()) return false;
    // ETIMEDOUT, EHOSTUNREACH... also happen on a connection already in use: only an attempt
    // that never got a socket is a connect failure.
    if (REASONS[reason].retryable && !this.attemptConnected) return true;
    return this.replayable() && this.cluster!.retry.retriesReason(reason) && this.cluster!.retry.budget.tryAcquire();
  }

  /** A 5xx head arrived (nothing went downstream yet): drop it and retry if allowed. */
  private retryStatus(status: number): boolean {
    const policy = this.cluster!.retry;
    if (!policy.retriesStatus(status) || !this.replayable() || !this.mayTryAnother() || !policy.budget.tryAcquire()) return false;
    this.cluster!.observeStatus(this.endpoint!, status);
    // Closing the connection is the only way to skip an unread body without reading it.
    this.stopUpstream();
    this.scheduleRetry(true);
    return true;
  }

  private replayable(): boolean {
    return this.body === null && IDEMPOTENT.has(this.req.method!);
  }

  /** Attempts are left and some server this request has not tried could take it. */
  private mayTryAnother(): boolean {
    if (this.attempt >= this.cluster!.retry.attempts) return false;
    (this.exclude ??= new Set()).add(this.endpoint!);
    return this.cluster!.hasUntried(this.exclude);
  }

  // ---- downstream events ---------------------------------------------------------------------

  downstreamClosed(): void {
    // writableEnded too: node's Http2ServerResponse reports writableFinished once its stream is
    // closed, also when the client reset it (RST_STREAM) before the response ended.
    if (!this.res.writableFinished || !this.res.writableEnded) {
      this.downstreamGone = true;
      this.clearTimer();
      if (this.queueTimer !== null) this.cluster!.admission?.withdraw(this);
      if (this.upstreamActive) this.stopUpstream();
      this.reason ??= 'downstream_aborted';
    }
    this.finish();
  }

  bodyIdle(): void {
    if (this.res.headersSent) {
      this.reason = 'request_body_timeout';
      if (this.upstreamActive) this.stopUpstream();
      this.res.destroy();
      return;
    }
    this.fail('request_body_timeout', true);
  }

  bodyTooLarge(): void {
    if (this.res.headersSent) {
      this.reason = 'body_too_large';
      if (this.upstreamActive) this.stopUpstream();
      this.res.destroy();
      return;
    }
    this.fail('body_too_large', true);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.owner.exchangeDone(this);
  }

  /** Upstream server that took (or last tried) the request, for the access log. */
  upstreamId(): string | undefined {
    return this.endpoint?.id;
  }
}

/** RFC 9110 §15.2: 1xx are interim. 100 is answered by usher itself; 103 and 102 are relayed. */
function relayInterim(res: ServerResponse, status: number, raw: Buffer[], settings: ForwardSettings): void {
  if (status === 103) {
    const fields: string[] = [];
    filterResponseHeaders(raw, settings, fields);
    const hints: Record<string, string | string[]> = {};
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!.toLowerCase();
      const prev = hints[name];
      hints[name] = prev === undefined ? fields[i + 1]! : Array.isArray(prev) ? [...prev, fields[i + 1]!] : [prev, fields[i + 1]!];
    }
    if (hints.link === undefined) return;
    try {
      res.writeEarlyHints(hints);
    } catch {
      // node:http refuses some Link values (e.g. several links in one field); hints are optional.
    }
  } else if (status === 102) {
    // Http2ServerResponse has no writeProcessing (102 is obsolete, RFC 9110 §15.2).
    if (typeof res.writeProcessing === 'function') res.writeProcessing();
  }
}

function hostValueIndex(h: readonly string[]): number {
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'host') return i + 1;
  return -1;
}

/** RFC 9110 §5.6.4 quoted-string content: escape " and \. */
function quoted(value: string): string {
  return value.includes('"') || value.includes('\\') ? value.replace(/["\\]/g, '\\$&') : value;
}

/** X-Real-IP from a trusted chain: the right-most address that is not a trusted proxy. */
function realClientIp(xff: string, peer: string, trusted: BlockList | null): string {
  if (trusted === null) return peer;
  const parts = xff.split(',');
  for (let i = parts.length - 1; i >= 0; i--) {
    const ip = parts[i]!.trim();
    if (ip === '') continue;
    if (!trusted.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4')) return ip;
  }
  return parts[0]!.trim() || peer;
}

function onDownstreamClose(this: WithExchange<ServerResponse>): void {
  this[kExchange]!.downstreamClosed();
}

function onBodyIdle(this: WithExchange<IncomingMessage>): void {
  this[kExchange]!.bodyIdle();
}

function onBufferData(this: WithExchange<IncomingMessage>, chunk: Buffer): void {
  this[kExchange]!.bodyChunk(chunk);
}

function onBufferEnd(this: WithExchange<IncomingMessage>): void {
  this[kExchange]!.bodyBuffered();
}

function onTryTimeout(ex: Exchange): void {
  ex.tryTimedOut();
}

function onRetryTimer(ex: Exchange): void {
  ex.retryNow();
}

function onBodyEnd(this: WithExchange<IncomingMessage>): void {
  this[kExchange]!.bodyEnded();
}

function ignoreError(): void {
  // Errors on the counted body reach undici (which reads it) and the downstream 'close' handler.
}
