// One downstream request on its way through the phases (src/pipeline/types.ts). The Exchange
// is the typed context every hook sees (context.ts) and it orchestrates: it walks the phases
// through the runner, hands the upstream side to UpstreamStage (upstream-stage.ts: one Attempt
// per try, the pure retry decision), and leaves the body to RequestBody (request-body.ts). Its
// state says where the request is, instead of flags. Event listeners are module-level functions
// that find their Exchange through a symbol on the emitter: no closure per request.
import { performance } from 'node:perf_hooks';
import { pipeline, type Transform } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';
import { REASONS, type ReasonCode } from '../errors/index.js';
import { doneChannel, requestStartChannel, routedChannel } from '../observability/events.js';
import { runDoneHooks, runHeadHooks, runRequestHooks, type PhaseHost } from '../pipeline/runner.js';
import type { BodyLength, Filter, LocalResponse, PhaseName, ResponseHead, StreamedBody } from '../pipeline/types.js';
import { routeRequestFor } from '../router/index.js';
import { GRPC_STATUS, grpcLocalHeaders, grpcTrailersOnly, isGrpc, percentEncode } from './grpc.js';
import { bodyStillArriving } from './early-response.js';
import { appendForwardingHeaders, filterResponseHeaders, hostValueIndex } from './headers.js';
import { first as firstField, removeField } from '../util/fields.js';
import { headProblem, localReplyFor, localReplyProblem, wantsJson } from './local-reply.js';
import { isIdempotent } from './retry-decision.js';
import { UpstreamStage } from './upstream-stage.js';
import { openTunnel, upgradeOf } from './upgrade.js';
import type { Tunnel } from './tunnel-pump.js';

export type { ExchangeOwner, ExchangeRuntime, ExchangeState } from './context.js';

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

export class Exchange extends UpstreamStage implements PhaseHost {
  private host: string | undefined = undefined;
  private path = '';
  private expectContinue = false;
  /** response phase: 0 while the route's hooks run, 1 for the listener's. */
  private responseStage = 0;
  private localBody: string | Buffer | StreamedBody | undefined = undefined;
  private closeAfter = false;
  /** The open tunnel of an upgrade (a WebSocket): a reload's drain policy ends it through this. */
  private tunnel: Tunnel | null = null;

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
      // The filters' bound within limits.body: a chunked body has no length to check up front.
      const max = this.runtime.config.limits.body;
      this.ensureBody().bufferIt(max === null ? route.requestBodyLimit : Math.min(max, route.requestBodyLimit));
      return; // bodyBuffered() goes on
    }
    if (step <= S_INSPECT) {
      if (!this.inspectBody(from)) return;
      from = 0;
    }
    if (step <= S_PEER && !this.choosePeer()) return;
    if (step <= S_UPSTREAM_REQUEST) {
      if (from === 0) this.buildUpstreamHead();
      if (!runRequestHooks(this, 'upstream_request', route.phases.upstreamRequest, from, this.upstreamHead!)) return;
    }
    this.startUpstream();
  }

  /** Routing: the normalised request (src/router/normalize.ts) and the route that takes it. */
  private routeIt(): boolean {
    // The client as the access lists and rate limits see it: the peer, or what a trusted proxy forwarded.
    const rr = routeRequestFor(this.req, this.host, this.path, this.clientAddress, this.runtime.config.routing.encoded_slashes === 'keep');
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
            } else this.hookReplied(v, f, 'request_body');
          },
          (err: unknown) => this.hookFailed(f, 'request_body', err),
        );
        return false;
      }
      if (Buffer.isBuffer(r)) body.buffer = r;
      else if (r !== undefined && r !== null) {
        this.hookReplied(r, f, 'request_body');
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
    this.hashKey = cluster.hashKeyOf(this.req.rawHeaders, this.path, this.clientAddress);
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

  /** The upstream's head through upstream_response and response; false pauses undici. */
  protected proxiedHead(phase: 'upstream_response' | 'response', from: number): boolean {
    const head = this.response!;
    if (phase === 'upstream_response') {
      if (!this.inspected && this.route!.phases.responseInspect.length > 0) {
        const go = this.inspectHead(head);
        // held: the body is read (undici goes on) and bodyHeld() carries on from here
        if (go !== 'go') return go === 'held';
      }
      if (!runHeadHooks(this, 'upstream_response', this.route!.phases.upstreamResponse, from, head)) return false;
      from = 0;
      this.responseStage = 0;
    }
    if (!this.responseHooks(from)) return false;
    return this.writeProxiedHead();
  }

  /** response_inspect on the upstream's head: go on, a reply (the upstream is dropped), or hold the body for the hooks that asked. */
  private inspectHead(head: ResponseHead): 'go' | 'held' | 'replied' {
    this.inspected = true;
    const filters = this.route!.phases.responseInspect;
    let limit = 0;
    for (let i = 0; i < filters.length; i++) {
      const f = filters[i]!;
      let r;
      try {
        r = f.responseInspect!.head(this, head);
      } catch (err) {
        this.stopUpstream();
        this.hookFailed(f, 'upstream_response', err);
        return 'replied';
      }
      if (r === undefined || r === 0) continue;
      if (typeof r === 'number') {
        (this.inspectors ??= []).push({ f, n: r });
        if (r > limit) limit = r;
        continue;
      }
      this.inspectorReplied(r, f);
      return 'replied';
    }
    if (limit === 0) return 'go';
    this.held = [];
    this.heldBytes = 0;
    this.holdLimit = limit;
    return 'held';
  }

  private inspectorReplied(reply: LocalResponse, f: Filter): void {
    this.held = null;
    this.stopUpstream();
    this.hookReplied(reply, f, 'upstream_response');
  }

  /** The held body is read (to its end, or past the largest bound asked): the hooks judge it, then the head and the held bytes go downstream. */
  protected bodyHeld(complete: boolean): void {
    if (this.downstreamGone || this.state !== 'response' || this.held === null) return;
    const head = this.response!;
    const body = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    for (const { f, n } of this.inspectors ?? []) {
      let r;
      try {
        r = f.responseInspect!.body(this, head, body.length > n ? body.subarray(0, n) : body, complete && body.length <= n);
      } catch (err) {
        this.held = null;
        this.stopUpstream();
        this.hookFailed(f, 'upstream_response', err);
        return;
      }
      if (r !== undefined) return this.inspectorReplied(r, f);
    }
    this.inspectors = null;
    if (this.proxiedHead('upstream_response', 0)) this.headWritten();
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
    if (transforms === false) return false;
    // RFC 9110 §8.6: no Content-Length in a 204 (an upstream that sends one is wrong; a 304's is allowed).
    if (head.status === 204) removeField(head.headers, 'content-length');
    if (this.owner.draining) res.shouldKeepAlive = false;
    // An answer before the whole upload: the connection closes after it (early-response.ts).
    if (bodyStillArriving(this.req, this.body !== null && this.body.stream !== null)) res.shouldKeepAlive = false;
    try {
      // A gRPC Trailers-Only response (grpc-status in the head) must stay one HEADERS frame. Only
      // HTTP/2 requests can be gRPC: a plain HTTP/1.1 response never scans its fields for it.
      if (!(this.req.httpVersionMajor === 2 && isGrpc(this.req) && grpcTrailersOnly(res, head.status, head.headers))) {
        // The standard reason phrase: undici decodes the upstream's as UTF-8, which node:http may refuse.
        res.writeHead(head.status, head.headers);
      }
    } catch (err) {
      this.responseStarted = false;
      this.current!.stop();
      if (this.upstreamHeadWritable()) {
        // The upstream's head was fine: a response-side hook broke it. Not the upstream's fault.
        this.owner.headRefused(this, this.responseFilterNames(true), err);
        this.replyBare('internal_error');
        return false;
      }
      // node:http refused a header or status line the upstream parser let through.
      this.upstreamFailed(this.current!, 'upstream_bad_response', err);
      return false;
    }
    this.state = 'streaming';
    this.timings.responseStart = performance.now();
    // An SSE stream or a gRPC call may outlive reloads: the owner keeps it (src/server/drain/).
    if (this.owner.longLived !== undefined && !res.writableEnded && longLivedResponse(this.req, head.headers)) this.owner.longLived(this);
    if (transforms !== null) {
      this.sink = transforms[0]!;
      pipeline([...transforms, res], (err) => {
        if (err) res.destroy();
      });
    }
    const held = this.held;
    if (held !== null) {
      // what a response_inspect hook held (at most its bound and a chunk): downstream now
      this.held = null;
      const sink = this.sink ?? res;
      for (let i = 0; i < held.length; i++) sink.write(held[i]);
    }
    return true;
  }

  /** The upstream's 101 (200 on HTTP/2): through the response phase like any head, then the tunnel. */
  protected upgradeHead(from: number): void {
    if (this.responseHooks(from)) this.openUpgrade();
  }

  private openUpgrade(): void {
    const upstream = this.tunnelUpstream!;
    // The client left while a hook ran: its close already took the upstream socket (holdUpstream).
    if (this.downstreamGone || this.res.destroyed) return;
    // The upstream closed while a hook ran: no tunnel to open, and nothing went downstream yet.
    if (upstream.destroyed) return this.fail('upstream_reset', true);
    const head = this.response!;
    try {
      // The status says the connection is a tunnel from here: a hook may edit the fields only.
      const expected = this.req.httpVersionMajor === 2 ? 200 : 101;
      if (head.status !== expected) throw new Error(`a response hook changed the status of the tunnel head from ${expected} to ${String(head.status)}`);
      this.tunnel = openTunnel(this, upstream);
    } catch (err) {
      upstream.destroy();
      this.owner.headRefused(this, this.responseFilterNames(false), err);
      return this.replyBare('internal_error');
    }
    this.state = 'streaming';
    this.timings.responseStart = performance.now();
    if (this.tunnel !== null) this.owner.longLived?.(this);
  }

  /** What kind of long-lived connection this is (for logs): websocket, upgrade (another protocol), grpc or sse. */
  get longLivedKind(): 'websocket' | 'upgrade' | 'grpc' | 'sse' {
    if (this.tunnel !== null) return this.tunnel.websocket ? 'websocket' : 'upgrade';
    return this.req.httpVersionMajor === 2 && isGrpc(this.req) ? 'grpc' : 'sse';
  }

  /**
   * Ends this long-lived connection as its protocol allows (a WebSocket: close frame 1001 both
   * ways; an SSE stream: the end of the response; a gRPC call: grpc-status 14 UNAVAILABLE in the
   * trailers): a reload changed its route and the drain grace is over (route_reloaded), or usher
   * is shutting down (shutting_down).
   */
  endGracefully(message: string, reason: 'route_reloaded' | 'shutting_down' = 'route_reloaded'): void {
    if (this.state === 'done') return;
    this.reason = reason;
    if (this.tunnel !== null) return this.tunnel.goAway(message);
    const res = this.res;
    if (this.state !== 'streaming' || res.writableEnded || res.destroyed) return;
    this.stopUpstream();
    if (this.req.httpVersionMajor === 2) {
      if (isGrpc(this.req)) res.addTrailers({ 'grpc-status': String(GRPC_STATUS.UNAVAILABLE), 'grpc-message': percentEncode(`usher: ${message}`), 'usher-reason': reason });
    } else res.shouldKeepAlive = false;
    // A transformed body (compression) ends with its transform, which then ends the response.
    if (this.sink !== null) this.sink.end();
    else res.end();
  }

  /** The drain policy's close_after: what endGracefully did not end is cut. */
  cut(): void {
    if (this.state === 'done') return;
    this.reason = 'route_reloaded';
    if (this.tunnel !== null) return this.tunnel.cut();
    this.stopUpstream();
    this.res.destroy();
  }

  /** response_body: the transforms the route's filters want for this response (they change the length); false: one failed. */
  private bodyTransforms(head: ResponseHead): Transform[] | null | false {
    const filters = this.route?.phases.responseBody ?? NO_FILTERS;
    let out: Transform[] | null = null;
    for (let i = 0; i < filters.length; i++) {
      let t;
      try {
        t = filters[i]!.responseBody!(this, head);
      } catch (err) {
        for (const made of out ?? []) made.destroy();
        this.current!.stop();
        this.hookFailed(filters[i]!, 'response_body', err);
        return false;
      }
      if (t !== undefined) (out ??= []).push(t);
    }
    if (out !== null) this.bodyLength(head, out);
    return out;
  }

  /** The Content-Length after the transforms: kept or set when each says what it emits (BodyLength), else removed. */
  private bodyLength(head: ResponseHead, transforms: readonly Transform[]): void {
    let length: string | undefined = firstField(head.headers, 'content-length');
    for (let i = 0; i < transforms.length && length !== undefined; i++) {
      const out = (transforms[i] as BodyLength).outputLength;
      if (typeof out === 'number') length = String(out);
      else if (out !== 'input') length = undefined;
    }
    removeField(head.headers, 'content-length');
    if (length !== undefined) head.headers.push('content-length', length);
  }

  bodyBuffered(): void {
    if (this.downstreamGone || this.state === 'replying') return;
    if (this.state === 'body') return this.run(S_INSPECT, 0);
    if (this.awaitingBuffer) {
      this.awaitingBuffer = false;
      if (this.reason === undefined) this.dispatch();
    }
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

  /** Ends the request with usher's own reply for `reason` (or resets the stream if headers went out). */
  fail(reason: ReasonCode, close = false): void {
    this.reason = reason;
    this.stopUpstream();
    const stand = this.route?.phases.upstreamFailed ?? NO_FILTERS;
    if (stand.length > 0 && (REASONS[reason].source === 'upstream' || reason === 'no_upstream_server') && !this.res.headersSent && this.standIn(stand, reason, close)) return;
    const r = this.usherReply(reason);
    this.replyLocal(r.status, r.headers, r.body, reason, close);
  }

  /** upstream_failed: the first filter that has a reply to send instead of usher's error for `reason`. */
  private standIn(filters: readonly Filter[], reason: ReasonCode, close: boolean): boolean {
    for (let i = 0; i < filters.length; i++) {
      const f = filters[i]!;
      let r;
      try {
        r = f.upstreamFailed!(this, reason);
      } catch (err) {
        this.owner.filterFailed(this, f, 'upstream_failed', err);
        continue; // usher's own error reply then
      }
      if (r === undefined || r === null) continue;
      this.replyFrom(r, f, 'upstream_failed', close);
      return true;
    }
    return false;
  }

  /** usher's own reply for `reason`; req.headers is not touched on HTTP/1.1. */
  private usherReply(reason: ReasonCode): { status: number; headers: string[]; body: string | undefined } {
    // gRPC clients read grpc-status, not an HTML/JSON body: HTTP 200, Trailers-Only (writeLocal).
    if (this.req.httpVersionMajor === 2 && isGrpc(this.req)) return { status: 200, headers: grpcLocalHeaders(reason), body: undefined };
    return localReplyFor(reason, this.requestId, wantsJson(this.req.rawHeaders));
  }

  /** A local reply: through the response phase (route, then listener), then written. */
  /** `owned`: `headers` is this reply's own array (the exchange appends to it rather than copy it). */
  private replyLocal(status: number, headers: readonly string[], body: string | Buffer | StreamedBody | undefined, reason: ReasonCode, close: boolean, owned = false): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.reason = reason;
    this.localBody = body;
    this.closeAfter = close;
    let h: string[];
    if (owned) {
      h = headers as string[];
      h.push(this.runtime.forward.requestIdHeader, this.requestId);
    } else h = [...headers, this.runtime.forward.requestIdHeader, this.requestId];
    this.response = { status, headers: h, local: true };
    this.state = 'replying';
    this.responseStage = 0;
    if (this.responseHooks(0)) this.writeLocal();
  }

  private writeLocal(): void {
    const res = this.res;
    if (res.headersSent || res.destroyed || this.downstreamGone) return;
    const head = this.response!;
    if (this.closeAfter || this.owner.draining) res.shouldKeepAlive = false;
    try {
      // usher's reply to a gRPC call (no body, grpc-status in the head, usherReply) goes as one
      // HEADERS frame with END_STREAM, with whatever the response hooks added.
      if (!(this.localBody === undefined && this.req.httpVersionMajor === 2 && isGrpc(this.req) && grpcTrailersOnly(res, head.status, head.headers))) {
        res.writeHead(head.status, head.headers);
      }
    } catch (err) {
      // Fields grpcTrailersOnly set before one was refused must not go out with the 500.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      // A filter's own reply is checked when made (hookReplied), and usher's are well formed:
      // a response hook broke this head. node:http wrote nothing; answer a bare 500 (once).
      if (this.reason === 'internal_error' && this.responseStage === -1) return void res.destroy();
      this.owner.headRefused(this, this.responseFilterNames(false), err);
      return this.replyBare('internal_error');
    }
    const body = this.localBody;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) res.end(body);
    else if (bodyless(head.status, this.req.method!)) res.end();
    else {
      // A stream of known length (a cache file): a failure mid-way resets the response, which
      // is then short of its Content-Length (never a whole answer with the wrong bytes).
      pipeline(body.open(), res, (err) => {
        if (err) res.destroy();
      });
    }
    this.timings.responseStart = performance.now();
  }

  /** A 500 (or `reason`'s reply) written as is: the response hooks already failed on this request. */
  private replyBare(reason: ReasonCode): void {
    this.stopUpstream();
    const r = this.usherReply(reason);
    this.reason = reason;
    this.response = { status: r.status, headers: [...r.headers, this.runtime.forward.requestIdHeader, this.requestId], local: true };
    this.localBody = r.body;
    this.state = 'replying';
    // -1: no hook runs on this head, and a late resume of the earlier chain finds nothing to do.
    this.responseStage = -1;
    this.writeLocal();
  }

  /** Whether node:http accepts the upstream's head as usher received it (before any hook). */
  private upstreamHeadWritable(): boolean {
    if (this.upstreamRaw === null || this.upstreamStatus < 100 || this.upstreamStatus > 999) return false;
    const h: string[] = [];
    filterResponseHeaders(this.upstreamRaw, this.runtime.forward, h);
    return headProblem(h) === undefined;
  }

  /** The filters whose response-side hooks edited the head (for the log line). */
  private responseFilterNames(proxied: boolean): string[] {
    const p = this.route?.phases;
    const names = [...(proxied ? (p?.upstreamResponse ?? NO_FILTERS) : NO_FILTERS), ...(p?.response ?? NO_FILTERS), ...this.listener.response].map((f) => f.name);
    return [...new Set(names)];
  }

  hookReplied(reply: LocalResponse, filter: Filter, phase: PhaseName): void {
    this.replyFrom(reply, filter, phase, false);
  }

  private replyFrom(reply: LocalResponse, filter: Filter, phase: PhaseName, close: boolean): void {
    if (this.downstreamGone) return;
    if (reply.drop === true) return this.dropDownstream(reply.reason ?? 'local_response');
    const checked = reply.checked === true && Array.isArray(reply.headers);
    const problem = localReplyProblem(reply, !checked);
    if (problem !== undefined) return this.hookFailed(filter, phase, new Error(`${filter.name}: a local reply usher cannot send: ${problem}`));
    // The length is the body's: a filter's Content-Length (or Transfer-Encoding) that says
    // otherwise would desynchronise the connection's next response (RFC 9112 §6.3).
    let headers: string[];
    if (checked) headers = reply.headers as string[];
    else {
      headers = [];
      const h = reply.headers ?? [];
      for (let i = 0; i < h.length; i += 2) {
        const n = h[i]!.toLowerCase();
        if (n !== 'content-length' && n !== 'transfer-encoding') headers.push(h[i]!, h[i + 1]!);
      }
    }
    const body = reply.body;
    headers.push('content-length', String(body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length));
    this.replyLocal(reply.status, headers, body, reply.reason ?? 'local_response', close, true);
  }

  /** A filter's `drop`: no reply; the connection (HTTP/1.x) or the stream (HTTP/2, PROTOCOL_ERROR as nginx 1.22 resets a `return 444`) is reset. */
  private dropDownstream(reason: ReasonCode): void {
    this.reason = reason;
    this.stopUpstream();
    if (this.req.httpVersionMajor === 2) (this.res as unknown as { stream: ServerHttp2Stream }).stream.close(h2constants.NGHTTP2_PROTOCOL_ERROR);
    else this.res.destroy();
  }

  hookFailed(filter: Filter, phase: PhaseName, err: unknown): void {
    this.owner.filterFailed(this, filter, phase, err);
    if (this.downstreamGone) return;
    if ((this.state === 'replying' || phase === 'response') && !this.res.headersSent) {
      // A response hook failed: answer 500 without running them again.
      return this.replyBare('internal_error');
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
        if (this.proxiedHead('upstream_response', next)) this.headWritten();
        return;
      case 'response':
        // A bare reply was written after a response hook failed: a late resume has nothing to do.
        if (this.responseStage === -1) return;
        if (this.state === 'replying') {
          if (this.responseHooks(next)) this.writeLocal();
        } else if (this.tunnelUpstream !== null) this.upgradeHead(next);
        else if (this.responseHooks(next) && this.writeProxiedHead()) this.headWritten();
        return;
      default:
        return;
    }
  }

  /** A proxied head went downstream after an async hook: the body follows (or the end, if it came first). */
  private headWritten(): void {
    const trailers = this.earlyComplete;
    if (trailers === undefined) return this.upstreamResume!();
    this.earlyComplete = undefined;
    this.tryComplete(this.current!, trailers);
  }

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
}

/** Whether an HTTP/2 request has a body: its HEADERS frame did not end the stream (RFC 9113 §8.1). */
function h2HasBody(req: IncomingMessage): boolean {
  // A WebSocket over HTTP/2 (RFC 8441) keeps its stream open for frames, not for a body.
  return upgradeOf(req) === undefined && !(req as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders;
}

/** A response that may stay open for long: a gRPC call (not Trailers-Only: it has ended) or an SSE stream. */
function longLivedResponse(req: IncomingMessage, headers: readonly string[]): boolean {
  if (req.httpVersionMajor === 2 && isGrpc(req)) return true;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length === 12 && n.toLowerCase() === 'content-type') return headers[i + 1]!.trimStart().toLowerCase().startsWith('text/event-stream');
  }
  return false;
}

function setContentLength(h: string[], length: number): void {
  removeField(h, 'content-length');
  h.push('content-length', String(length));
}

function doneFailed(ex: Exchange, f: Filter, err: unknown): void {
  ex.owner.filterFailed(ex, f, 'done', err);
}
