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
import { BodyLimit } from './body-limit.js';
import { filterResponseHeaders, forwardedNode, RequestHead, scanRequestHeaders, trailersObject, type ForwardSettings } from './headers.js';
import { sendLocalReply, wantsJson } from './local-reply.js';

export const kExchange = Symbol('usher.exchange');

type WithExchange<T> = T & { [kExchange]?: Exchange };

/** What the exchange needs from the server that owns it. */
export interface ExchangeOwner {
  draining: boolean;
  exchangeDone(ex: Exchange): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Retries on another server, for failures where nothing reached the upstream application. */
const MAX_RETRIES = 2;

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
  /** Request target in origin-form. */
  path = '';
  endpoint: Endpoint | undefined = undefined;
  attempt = 0;
  exclude: Set<Endpoint> | undefined = undefined;
  private body: Readable | null = null;
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
    if (this.upstreamActive) this.stopUpstream();
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
    if (hasBody) {
      (this.req as WithExchange<IncomingMessage>)[kExchange] = this;
      const limit = this.runtime.config.limits.body;
      if (limit !== null && this.head.contentLength === undefined) {
        const counted = new BodyLimit(limit, () => this.bodyTooLarge());
        pipeline(this.req, counted, ignoreError);
        this.body = counted;
      } else {
        this.body = this.req;
      }
      this.socket.setTimeout(this.runtime.config.timeouts.body_idle);
      this.req.on('timeout', onBodyIdle);
      this.req.on('end', onBodyEnd);
    }
    this.appendForwardingHeaders();
    // Once per request, not per attempt: a retry re-sends the same edited head.
    const filters = this.route!.upstreamRequestFilters;
    for (let i = 0; i < filters.length; i++) filters[i]!.onUpstreamRequest!(this, this.upstreamHeaders);
    this.dispatch();
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
    if (fwd.via !== null) h.push('via', head.via === undefined ? fwd.via : `${head.via}, ${fwd.via}`);
    h.push(fwd.requestIdHeader, this.requestId);
  }

  private dispatch(): void {
    const cluster = this.cluster!;
    const endpoint = cluster.pick(this);
    if (endpoint === undefined) {
      this.fail(this.attempt === 0 ? 'no_upstream_server' : this.reason ?? 'no_upstream_server');
      return;
    }
    this.endpoint = endpoint;
    endpoint.inflight++;
    const host = cluster.hostFor(endpoint);
    if (host !== undefined) this.upstreamHeaders[this.hostIndex] = host;
    this.upstreamActive = true;
    this.attemptConnected = false;
    endpoint.pool.dispatch(
      // servername: honoured by undici's Request (lib/core/request.js), missing from its types.
      { path: this.path, method: this.req.method as Dispatcher.HttpMethod, headers: this.upstreamHeaders, body: this.body, servername: endpoint.servername } as Dispatcher.DispatchOptions,
      this,
    );
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
      this.endpoint!.inflight--;
    }
  }

  // ---- undici handler ------------------------------------------------------------------------

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
    this.responseStarted = true;
    this.resume = resume;
    const fwd = this.runtime.forward;
    const headers: string[] = [];
    filterResponseHeaders(rawHeaders, fwd, headers);
    if (fwd.via !== null) headers.push('via', fwd.via);
    headers.push(fwd.requestIdHeader, this.requestId);
    const filters = this.route!.responseFilters;
    for (let i = 0; i < filters.length; i++) filters[i]!.onResponse!(this, statusCode, headers);
    if (this.owner.draining) this.res.shouldKeepAlive = false;
    try {
      // The standard reason phrase: undici decodes the upstream's as UTF-8, which node:http may refuse.
      this.res.writeHead(statusCode, headers);
    } catch (err) {
      // node:http refused a header or status line the upstream parser let through.
      this.responseStarted = false;
      this.upstreamFailed('upstream_bad_response', err);
      return false;
    }
    return true;
  }

  private resume: (() => void) | null = null;

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
    if (trailers !== null && trailers.length > 0) this.res.addTrailers(trailersObject(trailers));
    this.res.end();
  }

  onError(err: Error): void {
    if (!this.upstreamActive) return; // we aborted it ourselves: the reason is already set
    this.abortUpstream = null;
    this.releaseEndpoint();
    this.upstreamFailed(classifyUpstreamError(err, this.responseStarted), err);
  }

  private upstreamFailed(reason: ReasonCode, _err: unknown): void {
    if (this.downstreamGone) return;
    if (!this.responseStarted && this.attempt < MAX_RETRIES && this.retryable(reason)) {
      this.attempt++;
      (this.exclude ??= new Set()).add(this.endpoint!);
      this.reason = reason;
      this.dispatch();
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

  /**
   * Connect failures never reached the upstream application, so any request may go elsewhere
   * (its body was not read yet). A reset before any response is retried only for idempotent
   * requests without a body. The upstreams issue adds budgets, per-try timeouts and buffering.
   */
  private retryable(reason: ReasonCode): boolean {
    // ETIMEDOUT, EHOSTUNREACH... also happen on a connection already in use: only an attempt
    // that never got a socket is a connect failure.
    if (REASONS[reason].retryable && !this.attemptConnected) return true;
    return reason === 'upstream_reset' && this.body === null && IDEMPOTENT.has(this.req.method!);
  }

  // ---- downstream events ---------------------------------------------------------------------

  downstreamClosed(): void {
    if (!this.res.writableFinished) {
      this.downstreamGone = true;
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
    res.writeProcessing();
  }
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

function onBodyEnd(this: WithExchange<IncomingMessage>): void {
  this[kExchange]!.socket.setTimeout(0);
}

function ignoreError(): void {
  // Errors on the counted body reach undici (which reads it) and the downstream 'close' handler.
}
