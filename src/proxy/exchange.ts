// One downstream request on its way through the phases (src/pipeline/types.ts): the Exchange is
// the typed context every hook sees, and it orchestrates — it walks the phases through the
// runner, hands each upstream try to an Attempt (attempt.ts), asks the pure retry decision
// (retry-decision.ts) after a failure, and leaves the body to RequestBody (request-body.ts).
// Its state says where the request is, instead of flags. Event listeners are module-level
// functions that find their Exchange through a symbol on the emitter: no closure per request.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline, type Transform, type Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { UsherConfig } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import {
  connectErrorChannel,
  doneChannel,
  requestStartChannel,
  retryChannel,
  routedChannel,
  upstreamResponseChannel,
  upstreamTryChannel,
  type ConnectErrorEvent,
  type DoneEvent,
  type RetryEvent,
  type UpstreamResponseEvent,
  type UpstreamTryEvent,
} from '../observability/events.js';
import { isAcceptableRequestId, newRequestId } from '../observability/request-id.js';
import { runDoneHooks, runHeadHooks, runRequestHooks, runUpstreamRequestHooks, type PhaseHost } from '../pipeline/runner.js';
import type {
  BodyObserver,
  CompiledRoute,
  Filter,
  ListenerChain,
  LocalResponse,
  PhaseName,
  ResponseHead,
  StateKey,
  Timings,
  TlsInfo,
  UpstreamRequestHead,
} from '../pipeline/types.js';
import { routeRequestFor, type RouteRequest, type Router } from '../router/index.js';
import { clientIdentityHeaders } from '../tls/client-cert.js';
import type { PickContext } from '../upstream/balancer.js';
import type { Cluster } from '../upstream/cluster.js';
import type { Endpoint } from '../upstream/endpoint.js';
import { Attempt, type TryOwner } from './attempt.js';
import { grpcTrailersOnly, isGrpc, sendGrpcLocalReply } from './grpc.js';
import { appendForwardingHeaders, filterResponseHeaders, hostValueIndex, RequestHead, scanRequestHeaders, trailersObject, type ForwardSettings } from './headers.js';
import { localReplyFor, wantsJson } from './local-reply.js';
import { relayInterim } from './interim.js';
import { RequestBody, type BodyOwner } from './request-body.js';
import { decideRetry, isIdempotent, usesBudget, type RetryFacts } from './retry-decision.js';
import { openTunnel, upgradeOf } from './upgrade.js';

const kExchange = Symbol('usher.exchange');
const kBytes = Symbol('usher.bytes');
type CountedSocket = Socket & { [kBytes]?: { read: number; written: number } };
type WithExchange<T> = T & { [kExchange]?: Exchange };

/** What the exchange needs of the compiled config it runs on. */
export interface ExchangeRuntime {
  readonly config: UsherConfig;
  readonly router: Router<CompiledRoute>;
  readonly forward: ForwardSettings;
}

/** What the exchange needs from the server that owns it. */
export interface ExchangeOwner {
  readonly draining: boolean;
  /** The shutdown grace period is over: what is cut now ends as shutting_down. */
  readonly cutting: boolean;
  exchangeDone(ex: Exchange): void;
  /** A hook threw or rejected (logged with the filter's name and the request id). */
  filterFailed(ex: Exchange, filter: Filter, phase: PhaseName, err: unknown): void;
}

/** Where a request is. */
export type ExchangeState =
  | 'early' // early_request (listener filters)
  | 'request' // routed; request phase
  | 'body' // request_body: reading the body whole for inspection
  | 'queued' // waiting for the circuit breaker's queue
  | 'trying' // an upstream try is out (or about to be)
  | 'backoff' // waiting to retry
  | 'response' // the upstream's head is in the response phases
  | 'streaming' // the response head went downstream; the body follows
  | 'replying' // a local reply is in the response phase or being written
  | 'done';

// Steps of run(), in order.
const S_EARLY = 0;
const S_ROUTE = 1;
const S_REQUEST = 2;
const S_REQUEST_BODY = 3;
const S_INSPECT = 4;
const S_PEER = 5;
const S_UPSTREAM_REQUEST = 6;

const NO_FILTERS: readonly Filter[] = Object.freeze([]);
/** Statuses whose response has no body (RFC 9110 §6.4.1): nothing to transform. */
const bodyless = (status: number, method: string) => method === 'HEAD' || status === 204 || status === 304 || status < 200;

export class Exchange implements PhaseHost, PickContext, TryOwner, BodyOwner {
  readonly owner: ExchangeOwner;
  readonly runtime: ExchangeRuntime;
  readonly listener: ListenerChain;
  // The data path (node:http today); hooks never see these.
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Kept here: node:http detaches req.socket once the response is done. */
  readonly socket: Socket;
  readonly head = new RequestHead();

  readonly requestId: string;
  readonly clientIp: string;
  readonly timings: Timings;
  readonly explaining = false;
  state: ExchangeState = 'early';
  route: CompiledRoute | undefined = undefined;
  request: RouteRequest | undefined = undefined;
  /** The upstream this request goes to, chosen once (upstream_peer). Retries stay on it. */
  cluster: Cluster | undefined = undefined;
  response: ResponseHead | undefined = undefined;
  reason: ReasonCode | undefined = undefined;

  // PickContext: retries made so far, servers tried, the balancer's key.
  attempt = 0;
  exclude: Set<Endpoint> | undefined = undefined;
  hashKey: string | undefined = undefined;
  /** The current (or last) upstream try. */
  current: Attempt | null = null;
  /** Response headers are committed to (a failure from here resets the stream). */
  responseStarted = false;

  private host: string | undefined = undefined;
  private path = '';
  private expectContinue = false;
  private hasBody = false;
  private body: RequestBody | null = null;
  /** Waiting for a replay buffer before the first try. */
  private awaitingBuffer = false;
  private readonly upstreamHeaders: string[] = [];
  private upstreamHead: UpstreamRequestHead | undefined = undefined;
  private hostIndex = -1;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Circuit breaker queue: the wait timer (set while queued), and whether it was ever queued. */
  queueTimer: NodeJS.Timeout | null = null;
  private queued = false;
  private upstreamResume: (() => void) | null = null;
  /** The first response_body transform; data goes through it instead of straight downstream. */
  private sink: Writable | null = null;
  /** response phase: 0 while the route's hooks run, 1 for the listener's. */
  private responseStage = 0;
  private localBody: string | Buffer | undefined = undefined;
  private closeAfter = false;
  private downstreamGone = false;
  private slots: unknown[] | undefined = undefined;
  private tlsInfo: TlsInfo | undefined | null = null;

  constructor(owner: ExchangeOwner, runtime: ExchangeRuntime, listener: ListenerChain, req: IncomingMessage, res: ServerResponse) {
    this.owner = owner;
    this.runtime = runtime;
    this.listener = listener;
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    this.timings = { start: performance.now(), routed: undefined, upstreamStart: undefined, responseStart: undefined, end: undefined };
    const fwd = runtime.forward;
    scanRequestHeaders(req.rawHeaders, fwd, this.head, this.upstreamHeaders);
    this.clientIp = this.socket.remoteAddress ?? '';
    const trusted = fwd.trusted !== null && this.clientIp !== '' && fwd.trusted.check(this.clientIp, this.clientIp.includes(':') ? 'ipv6' : 'ipv4');
    const incomingId = this.head.requestId;
    this.requestId = trusted && incomingId !== undefined && isAcceptableRequestId(incomingId) ? incomingId : newRequestId();
    (res as WithExchange<ServerResponse>)[kExchange] = this;
    res.on('close', onDownstreamClose);
    if (!trusted) this.head.xff = this.head.xfp = this.head.xfh = this.head.forwarded = undefined;
  }

  // ---- the context hooks see (RequestContext) ------------------------------------------------

  get method(): string {
    return this.req.method!;
  }
  get target(): string {
    return this.req.url ?? '';
  }
  get httpVersion(): '1.0' | '1.1' | '2' {
    return this.req.httpVersionMajor === 2 ? '2' : this.req.httpVersionMinor === 0 ? '1.0' : '1.1';
  }
  get scheme(): 'http' | 'https' {
    return (this.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }
  get headers(): readonly string[] {
    return this.req.rawHeaders;
  }
  header(name: string): string | undefined {
    const h = this.req.rawHeaders;
    let value: string | undefined;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n.length === name.length && n.toLowerCase() === name) value = value === undefined ? h[i + 1]! : `${value}, ${h[i + 1]!}`;
    }
    return value;
  }
  get clientPort(): number {
    return this.socket.remotePort ?? 0;
  }
  get tls(): TlsInfo | undefined {
    if (this.tlsInfo === null) {
      const s = this.socket as TLSSocket;
      this.tlsInfo = s.encrypted ? { servername: typeof s.servername === 'string' ? s.servername : undefined, clientIdentity: clientIdentityHeaders(s) } : undefined;
    }
    return this.tlsInfo;
  }
  get upgrade(): string | undefined {
    return upgradeOf(this.req);
  }
  get upstream(): { name: string | undefined; server: string | undefined; attempts: number } {
    return { name: this.cluster?.name, server: this.current?.endpoint.id, attempts: this.current === null ? 0 : this.attempt + 1 };
  }
  get<T>(key: StateKey<T>): T | undefined {
    return this.slots?.[key.id] as T | undefined;
  }
  set<T>(key: StateKey<T>, value: T): void {
    (this.slots ??= [])[key.id] = value;
  }
  observeRequestBody(observer: BodyObserver): boolean {
    if (!this.hasBody) return false;
    this.ensureBody().observe(observer);
    return true;
  }

  // ---- the request side ----------------------------------------------------------------------

  /** Starts the phases; `host` and `path` as the handler read them from the request line. */
  start(host: string | undefined, path: string, expectContinue: boolean): void {
    this.host = host;
    this.path = path;
    this.expectContinue = expectContinue;
    if (requestStartChannel.hasSubscribers) requestStartChannel.publish({ server: this.owner, ctx: this });
    this.run(S_EARLY, 0);
  }

  /** Walks the steps from `step` (hook `from` of its phase) until one waits or answers. */
  private run(step: number, from: number): void {
    if (step <= S_EARLY) {
      if (!runRequestHooks(this, 'early_request', this.listener.early, from)) return;
      from = 0;
    }
    if (step <= S_ROUTE && !this.routeIt()) return;
    const route = this.route!;
    if (step <= S_REQUEST) {
      this.state = 'request';
      if (!runRequestHooks(this, 'request', route.phases.request, from)) return;
      from = 0;
      if (route.respond !== undefined) return this.replyLocal(route.respond.status, route.respond.headers, route.respond.body, 'local_response', false);
      // RFC 9112 §3.2.4 asterisk-form: undici cannot send it upstream, so only respond routes answer it.
      if (this.path === '*') return this.fail('bad_request');
      if (!this.acceptBody()) return;
    }
    if (step <= S_REQUEST_BODY && this.hasBody && route.requestBodyLimit > 0) {
      this.state = 'body';
      this.ensureBody().bufferIt(route.requestBodyLimit);
      return; // bodyBuffered() goes on
    }
    if (step <= S_INSPECT) {
      if (!this.inspectBody(from)) return;
      from = 0;
    }
    if (step <= S_PEER && !this.choosePeer()) return;
    if (step <= S_UPSTREAM_REQUEST) {
      if (from === 0) this.buildUpstreamHead();
      if (!runUpstreamRequestHooks(this, route.phases.upstreamRequest, from, this.upstreamHead!)) return;
    }
    this.startUpstream();
  }

  /** Routing: the normalised request (src/router/normalize.ts) and the route that takes it. */
  private routeIt(): boolean {
    const rr = routeRequestFor(this.req, this.host, this.path, this.clientIp, this.runtime.config.routing.encoded_slashes === 'keep');
    if (rr === undefined) {
      this.fail('unsafe_path');
      return false;
    }
    this.request = rr;
    const route = this.runtime.router.route(rr);
    this.timings.routed = performance.now();
    if (route === undefined) {
      this.fail('no_route');
      return false;
    }
    this.route = route;
    if (routedChannel.hasSubscribers) routedChannel.publish({ server: this.owner, ctx: this, route: route.name });
    return true;
  }

  /** Whether the request carries a body, and whether usher will read it (413 before any byte). */
  private acceptBody(): boolean {
    const head = this.head;
    const limits = this.runtime.config.limits;
    // HTTP/2 frames the body itself (END_STREAM); Content-Length, if sent, is checked against DATA by node.
    this.hasBody = this.req.httpVersionMajor === 2 ? h2HasBody(this.req) : head.transferEncoding !== undefined || (head.contentLength !== undefined && head.contentLength !== '0');
    if (this.hasBody && limits.body !== null && head.contentLength !== undefined && Number(head.contentLength) > limits.body) {
      // Refused before any body byte is read, and before "100 Continue" is sent.
      this.fail('body_too_large', true);
      return false;
    }
    // usher answers Expect: 100-continue itself, once it is willing to read the body.
    if (this.expectContinue) this.res.writeContinue();
    return true;
  }

  private ensureBody(): RequestBody {
    return (this.body ??= new RequestBody(this, this.req, this.runtime.config.timeouts.body_idle));
  }

  /** request_body: each filter's inspect() on the whole body; it may answer or replace it. */
  private inspectBody(from: number): boolean {
    const filters = this.route!.phases.requestBody;
    if (!this.hasBody || filters.length === 0) return true;
    const body = this.body!;
    for (let i = from; i < filters.length; i++) {
      const f = filters[i]!;
      let r;
      try {
        r = f.requestBody!.inspect(this, body.buffer!);
      } catch (err) {
        this.hookFailed(f, 'request_body', err);
        return false;
      }
      if (r instanceof Promise) {
        const next = i + 1;
        r.then(
          (v) => {
            if (v === undefined || v === null || Buffer.isBuffer(v)) {
              if (v) body.buffer = v;
              this.resume('request_body', next);
            } else this.hookReplied(v);
          },
          (err: unknown) => this.hookFailed(f, 'request_body', err),
        );
        return false;
      }
      if (Buffer.isBuffer(r)) body.buffer = r;
      else if (r !== undefined && r !== null) {
        this.hookReplied(r);
        return false;
      }
    }
    return true;
  }

  /** upstream_peer: a filter (a split) chooses the upstream, else the route's. */
  private choosePeer(): boolean {
    const route = this.route!;
    let cluster = route.cluster;
    const peers = route.phases.upstreamPeer;
    for (let i = 0; i < peers.length; i++) {
      let c;
      try {
        c = peers[i]!.upstreamPeer!(this);
      } catch (err) {
        this.hookFailed(peers[i]!, 'upstream_peer', err);
        return false;
      }
      if (c !== undefined) {
        cluster = c;
        break;
      }
    }
    if (cluster === undefined) {
      this.fail('no_upstream_server');
      return false;
    }
    this.cluster = cluster;
    this.hashKey = cluster.hashKeyOf(this.req.rawHeaders, this.path, this.clientIp);
    cluster.retry.budget.noteRequest();
    return true;
  }

  /** The upstream head as the route sends it, before its upstream_request filters. */
  private buildUpstreamHead(): void {
    const h = this.upstreamHeaders;
    const body = this.body;
    // A body read whole goes as a Buffer: undici frames it, so the length must be its own.
    if (body !== null && body.buffer !== null) setContentLength(h, body.buffer.length);
    this.hostIndex = appendForwardingHeaders(h, this.head, this.runtime.forward, this.clientIp, this.scheme, this.req.httpVersionMajor === 2, this.requestId);
    // TE is hop-by-hop and dropped, but gRPC servers expect "te: trailers" (RFC 9110 §10.1.4),
    // and usher does relay trailers.
    if (this.cluster!.config.protocol !== 'http1' && this.req.httpVersionMajor === 2 && isGrpc(this.req)) h.push('te', 'trailers');
    this.upstreamHead = { method: this.req.method!, target: this.request!.uri, headers: h };
  }

  /** After upstream_request: the body's mode, then the first try. */
  private startUpstream(): void {
    // A filter may have removed fields before Host: find it again (usher's own is the only "host").
    if (this.route!.phases.upstreamRequest.length > 0) this.hostIndex = hostValueIndex(this.upstreamHeaders);
    this.timings.upstreamStart = performance.now();
    if (this.hasBody) {
      const body = this.ensureBody();
      if (body.buffer === null) {
        const retry = this.cluster!.retry;
        const length = this.head.contentLength;
        if (length !== undefined && retry.attempts > 0 && Number(length) <= retry.bufferBody && isIdempotent(this.req.method!)) {
          // Small enough to keep: read it whole, then send it (and replay it on a retry).
          this.awaitingBuffer = true;
          body.bufferIt(Infinity);
          return;
        }
        body.streamIt(this.runtime.config.limits.body, length !== undefined);
      }
    }
    this.dispatch();
  }

  // ---- upstream tries ------------------------------------------------------------------------

  private dispatch(): void {
    const cluster = this.cluster!;
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
    const host = cluster.hostFor(endpoint);
    if (host !== undefined && this.hostIndex >= 0) this.upstreamHeaders[this.hostIndex] = host;
    const perTry = cluster.retry.perTryTimeout;
    if (perTry !== null) t.timer = setTimeout(onTryTimeout, perTry, t);
    if (upstreamTryChannel.hasSubscribers) {
      upstreamTryChannel.publish({ server: this.owner, ctx: this, upstream: cluster.name, upstreamServer: endpoint.id, attempt: this.attempt } satisfies UpstreamTryEvent);
    }
    const body = this.body;
    endpoint.pool.dispatch(
      // servername: honoured by undici's Request (lib/core/request.js), missing from its types.
      {
        path: this.upstreamHead!.target,
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.upstreamHeaders,
        body: body === null ? null : (body.buffer ?? body.stream),
        upgrade: upgradeOf(this.req),
        servername: endpoint.servername,
      } as Dispatcher.DispatchOptions,
      t,
    );
  }

  // Waiter (circuit breaker queue)
  admitted(): void {
    if (!this.downstreamGone && !this.res.headersSent) this.dispatch();
  }

  overloaded(): void {
    if (!this.downstreamGone) this.fail('upstream_overloaded');
  }

  tryHeaders(t: Attempt, statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
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
      upstreamResponseChannel.publish({ server: this.owner, ctx: this, upstream: cluster.name, upstreamServer: t.endpoint.id, status: statusCode } satisfies UpstreamResponseEvent);
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
    this.upstreamResume = resume;
    this.state = 'response';
    return this.proxiedHead('upstream_response', 0);
  }

  /** The upstream's head through upstream_response and response; false pauses undici. */
  private proxiedHead(phase: 'upstream_response' | 'response', from: number): boolean {
    const head = this.response!;
    if (phase === 'upstream_response') {
      if (!runHeadHooks(this, 'upstream_response', this.route!.phases.upstreamResponse, from, head)) return false;
      from = 0;
      this.responseStage = 0;
    }
    if (!this.responseHooks(from)) return false;
    return this.writeProxiedHead();
  }

  /** The response phase: the route's hooks, then the listener's (outermost last). */
  private responseHooks(from: number): boolean {
    const head = this.response!;
    if (this.responseStage === 0) {
      const routeHooks = this.route?.phases.response ?? NO_FILTERS;
      if (!runHeadHooks(this, 'response', routeHooks, from, head)) return false;
      from = 0;
      this.responseStage = 1;
    }
    return runHeadHooks(this, 'response', this.listener.response, from, head);
  }

  private writeProxiedHead(): boolean {
    const head = this.response!;
    const res = this.res;
    const transforms = bodyless(head.status, this.req.method!) ? null : this.bodyTransforms(head);
    if (this.owner.draining) res.shouldKeepAlive = false;
    try {
      // A gRPC Trailers-Only response (grpc-status in the head) must stay one HEADERS frame. Only
      // HTTP/2 requests can be gRPC: a plain HTTP/1.1 response never scans its fields for it.
      if (!(this.req.httpVersionMajor === 2 && isGrpc(this.req) && grpcTrailersOnly(res, head.status, head.headers))) {
        // The standard reason phrase: undici decodes the upstream's as UTF-8, which node:http may refuse.
        res.writeHead(head.status, head.headers);
      }
    } catch (err) {
      // node:http refused a header or status line the upstream parser let through.
      this.responseStarted = false;
      this.current!.stop();
      this.upstreamFailed(this.current!, 'upstream_bad_response', err);
      return false;
    }
    this.state = 'streaming';
    this.timings.responseStart = performance.now();
    if (transforms !== null) {
      this.sink = transforms[0]!;
      pipeline([...transforms, res], (err) => {
        if (err) res.destroy();
      });
    }
    return true;
  }

  /** response_body: the transforms the route's filters want for this response (they change the length). */
  private bodyTransforms(head: ResponseHead): Transform[] | null {
    const filters = this.route?.phases.responseBody ?? NO_FILTERS;
    let out: Transform[] | null = null;
    for (let i = 0; i < filters.length; i++) {
      const t = filters[i]!.responseBody!(this, head);
      if (t !== undefined) (out ??= []).push(t);
    }
    if (out !== null) removeField(head.headers, 'content-length');
    return out;
  }

  tryUpgrade(t: Attempt, statusCode: number, rawHeaders: Buffer[] | string[], socket: Socket): void {
    if (this.downstreamGone) {
      socket.destroy();
      return;
    }
    this.cluster!.observeStatus(t.endpoint, statusCode);
    this.responseStarted = true;
    this.state = 'streaming';
    openTunnel(this, statusCode, rawHeaders, socket);
  }

  tryData(_t: Attempt, chunk: Buffer): boolean {
    const sink = this.sink ?? this.res;
    if (sink.write(chunk)) return true;
    if (this.res.destroyed) return false;
    sink.once('drain', this.upstreamResume!);
    return false;
  }

  tryComplete(_t: Attempt, trailers: readonly (Buffer | string)[] | null): void {
    if (this.sink !== null) {
      // A transformed body ends with the transform; trailers described the original bytes.
      this.sink.end();
      return;
    }
    // HTTP/1.1 upstreams give trailers as a flat array, HTTP/2 ones as an object.
    if (trailers !== null && (trailers.length > 0 || !Array.isArray(trailers))) this.res.addTrailers(trailersObject(trailers));
    this.res.end();
  }

  tryFailed(t: Attempt, reason: ReasonCode, err: unknown): void {
    this.cluster!.observeFailure(t.endpoint, reason, t.connected);
    if (!t.connected && connectErrorChannel.hasSubscribers) {
      connectErrorChannel.publish({ server: this.owner, ctx: this, upstream: this.cluster!.name, upstreamServer: t.endpoint.id, reason } satisfies ConnectErrorEvent);
    }
    this.upstreamFailed(t, reason, err);
  }

  /** retry.per_try_timeout expired before the response head: abandon this try. */
  tryTimedOut(t: Attempt): void {
    t.timer = null;
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

  private retryFacts(t: Attempt, reason: ReasonCode, status: number | undefined): RetryFacts {
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

  private upstreamFailed(t: Attempt, reason: ReasonCode, _err: unknown): void {
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
  private retryStatus(t: Attempt, status: number): boolean {
    const facts = this.retryFacts(t, 'upstream_bad_response', status);
    if (decideRetry(facts) === 'no') return false;
    this.cluster!.retry.budget.tryAcquire();
    this.cluster!.observeStatus(t.endpoint, status);
    // Closing the connection is the only way to skip an unread body without reading it.
    t.stop();
    this.scheduleRetry('upstream_bad_response', true);
    return true;
  }

  private scheduleRetry(reason: ReasonCode, backoff: boolean): void {
    this.attempt++;
    if (retryChannel.hasSubscribers) retryChannel.publish({ server: this.owner, ctx: this, upstream: this.cluster!.name, reason, attempt: this.attempt, backoff } satisfies RetryEvent);
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

  // ---- the body (BodyOwner) ------------------------------------------------------------------

  bodyBuffered(): void {
    if (this.downstreamGone || this.state === 'replying') return;
    if (this.state === 'body') return this.run(S_INSPECT, 0);
    if (this.awaitingBuffer) {
      this.awaitingBuffer = false;
      if (this.reason === undefined) this.dispatch();
    }
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
    t.clearTimer();
    t.timer = setTimeout(onTryTimeout, perTry, t);
  }

  bodyIdle(): void {
    this.abortWith('request_body_timeout');
  }

  bodyTooLarge(): void {
    this.abortWith('body_too_large');
  }

  /** A downstream failure while the body streams: a reply while it can, else a reset. */
  private abortWith(reason: ReasonCode): void {
    if (this.res.headersSent) {
      this.reason = reason;
      if (this.current?.active) this.current.stop();
      this.res.destroy();
      return;
    }
    this.fail(reason, true);
  }

  // ---- local replies -------------------------------------------------------------------------

  /** Ends the request with usher's own reply for `reason` (or resets the stream if headers went out). */
  fail(reason: ReasonCode, close = false): void {
    this.reason = reason;
    this.stopUpstream();
    // gRPC clients read grpc-status, not an HTML/JSON body (gRPC over HTTP/2: Trailers-Only,
    // one HEADERS frame: it skips the response phase). req.headers is not touched on HTTP/1.1.
    if (this.req.httpVersionMajor === 2 && isGrpc(this.req)) {
      this.state = 'replying';
      return sendGrpcLocalReply(this.res, reason, this.requestId, this.runtime.forward.requestIdHeader);
    }
    const r = localReplyFor(reason, this.requestId, wantsJson(this.req.rawHeaders));
    this.replyLocal(r.status, r.headers, r.body, reason, close);
  }

  /** A local reply: through the response phase (route, then listener), then written. */
  private replyLocal(status: number, headers: readonly string[], body: string | Buffer | undefined, reason: ReasonCode, close: boolean): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.reason = reason;
    this.localBody = body;
    this.closeAfter = close;
    this.response = { status, headers: [...headers, this.runtime.forward.requestIdHeader, this.requestId], local: true };
    this.state = 'replying';
    this.responseStage = 0;
    if (this.responseHooks(0)) this.writeLocal();
  }

  private writeLocal(): void {
    const res = this.res;
    if (res.headersSent || res.destroyed || this.downstreamGone) return;
    const head = this.response!;
    if (this.closeAfter || this.owner.draining) res.shouldKeepAlive = false;
    res.writeHead(head.status, head.headers);
    res.end(this.localBody);
    this.timings.responseStart = performance.now();
  }

  private stopUpstream(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.queueTimer !== null) this.cluster!.admission?.withdraw(this);
    if (this.current?.active) this.current.stop();
  }

  // ---- the runner's callbacks (PhaseHost) ----------------------------------------------------

  hookReplied(reply: LocalResponse): void {
    if (this.downstreamGone) return;
    this.replyLocal(reply.status, reply.headers ?? [], reply.body, reply.reason ?? 'local_response', false);
  }

  hookFailed(filter: Filter, phase: PhaseName, err: unknown): void {
    this.owner.filterFailed(this, filter, phase, err);
    if (this.downstreamGone) return;
    if (this.state === 'replying' && !this.res.headersSent) {
      // A response hook failed on a local reply: answer 500 without running them again.
      this.stopUpstream();
      const r = localReplyFor('internal_error', this.requestId, wantsJson(this.req.rawHeaders));
      this.reason = 'internal_error';
      this.response = { status: r.status, headers: [...r.headers, this.runtime.forward.requestIdHeader, this.requestId], local: true };
      this.localBody = r.body;
      this.writeLocal();
      return;
    }
    if (this.res.headersSent) {
      this.reason = 'internal_error';
      this.stopUpstream();
      this.res.destroy();
      return;
    }
    this.responseStarted = false;
    this.fail('internal_error');
  }

  resume(phase: PhaseName, next: number): void {
    if (this.downstreamGone || this.state === 'done') return;
    switch (phase) {
      case 'early_request':
        return this.run(S_EARLY, next);
      case 'request':
        return this.run(S_REQUEST, next);
      case 'request_body':
        return this.run(S_INSPECT, next);
      case 'upstream_request':
        return this.run(S_UPSTREAM_REQUEST, next);
      case 'upstream_response':
        if (this.proxiedHead('upstream_response', next)) this.upstreamResume!();
        return;
      case 'response':
        if (this.state === 'replying') {
          if (this.responseHooks(next)) this.writeLocal();
        } else if (this.responseHooks(next) && this.writeProxiedHead()) this.upstreamResume!();
        return;
      default:
        return;
    }
  }

  // ---- downstream events ---------------------------------------------------------------------

  downstreamClosed(): void {
    // writableEnded too: node's Http2ServerResponse reports writableFinished once its stream is
    // closed, also when the client reset it (RST_STREAM) before the response ended.
    if (!this.res.writableFinished || !this.res.writableEnded) {
      this.downstreamGone = true;
      this.stopUpstream();
      if (this.owner.cutting) this.reason = 'shutting_down';
      this.reason ??= 'downstream_aborted';
    }
    this.finish();
  }

  /** done: exactly once, whatever happened (route's hooks, then the listener's). */
  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.timings.end = performance.now();
    const route = this.route;
    if (route !== undefined && route.phases.done.length > 0) runDoneHooks(this, route.phases.done, doneFailed);
    if (this.listener.done.length > 0) runDoneHooks(this, this.listener.done, doneFailed);
    if (doneChannel.hasSubscribers) doneChannel.publish(this.doneEvent());
    this.owner.exchangeDone(this);
  }

  private doneEvent(): DoneEvent {
    const res = this.res;
    let bytesIn: number | null = null;
    let bytesOut: number | null = null;
    // Per request on a keep-alive connection: the socket's counters since the previous request.
    // An HTTP/2 session multiplexes streams on one socket: no per-request count there.
    if (this.req.httpVersionMajor !== 2) {
      const socket = this.socket as CountedSocket;
      const prev = (socket[kBytes] ??= { read: 0, written: 0 });
      bytesIn = socket.bytesRead - prev.read;
      bytesOut = socket.bytesWritten - prev.written;
      prev.read = socket.bytesRead;
      prev.written = socket.bytesWritten;
    }
    return {
      server: this.owner,
      ctx: this,
      host: this.head.host ?? null,
      status: res.headersSent ? res.statusCode : 0,
      reason: this.reason ?? null,
      bytesIn,
      bytesOut,
      durationMs: this.timings.end! - this.timings.start,
    };
  }
}

/** Whether an HTTP/2 request has a body: its HEADERS frame did not end the stream (RFC 9113 §8.1). */
function h2HasBody(req: IncomingMessage): boolean {
  // A WebSocket over HTTP/2 (RFC 8441) keeps its stream open for frames, not for a body.
  return upgradeOf(req) === undefined && !(req as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders;
}

function setContentLength(h: string[], length: number): void {
  removeField(h, 'content-length');
  h.push('content-length', String(length));
}

function removeField(h: string[], name: string): void {
  let w = 0;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) continue;
    h[w] = h[i]!;
    h[w + 1] = h[i + 1]!;
    w += 2;
  }
  h.length = w;
}

function doneFailed(ex: Exchange, f: Filter, err: unknown): void {
  ex.owner.filterFailed(ex, f, 'done', err);
}

function onDownstreamClose(this: WithExchange<ServerResponse>): void {
  this[kExchange]!.downstreamClosed();
}

function onTryTimeout(t: Attempt): void {
  (t.owner as Exchange).tryTimedOut(t);
}

function onRetryTimer(ex: Exchange): void {
  ex.retryNow();
}
