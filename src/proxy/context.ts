// The per-request context every hook sees (RequestContext, src/pipeline/types.ts), over the
// data path's objects (node:http today): what the request is, where it is, and its typed state.
// The Exchange (exchange.ts) builds on it: UpstreamStage (upstream-stage.ts) runs the tries,
// the Exchange walks the phases.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { UsherConfig } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import type { DoneEvent } from '../observability/events.js';
import { isAcceptableRequestId, newRequestId } from '../observability/request-id.js';
import type { BodyObserver, CompiledRoute, Filter, ListenerChain, PhaseName, RequestContext, ResponseHead, StateKey, Timings, TlsInfo } from '../pipeline/types.js';
import type { RouteRequest, Router } from '../router/index.js';
import { clientIdentityHeaders } from '../tls/client-cert.js';
import type { Cluster } from '../upstream/cluster.js';
import type { Attempt } from './attempt.js';
import { realClientIp, RequestHead, scanRequestHeaders, type ForwardSettings } from './headers.js';
import { watchCompleteBody } from './body-idle.js';
import { RequestBody, type BodyOwner } from './request-body.js';
import { upgradeOf } from './upgrade.js';

const kExchange = Symbol('usher.exchange');
const kBytes = Symbol('usher.bytes');
type CountedSocket = Socket & { [kBytes]?: { read: number; written: number } };
type WithExchange<T> = T & { [kExchange]?: ExchangeContext };

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
  exchangeDone(ex: ExchangeContext): void;
  /**
   * The exchange became a long-lived connection (a tunnel opened, an SSE or gRPC response head
   * went out): kept through reloads that leave its route alone, ended by its drain policy
   * otherwise (src/server/drain/). Absent: nobody keeps them (usher explain).
   */
  longLived?(ex: ExchangeContext & LongLivedExchange): void;
  /** A hook threw or rejected (logged with the filter's name and the request id). */
  filterFailed(ex: ExchangeContext, filter: Filter, phase: PhaseName, err: unknown): void;
  /** node:http or undici refused a head after `filters` edited it (answered 500 internal_error). */
  headRefused(ex: ExchangeContext, filters: readonly string[], err: unknown): void;
}

/** What the drain policy needs of a long-lived exchange (exchange.ts). */
export interface LongLivedExchange {
  readonly longLivedKind: 'websocket' | 'upgrade' | 'grpc' | 'sse';
  endGracefully(message: string, reason?: 'route_reloaded' | 'shutting_down'): void;
  cut(): void;
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

export abstract class ExchangeContext implements RequestContext, BodyOwner {
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
  /** Retries made so far (PickContext.attempt). */
  attempt = 0;
  /** The current (or last) upstream try. */
  current: Attempt | null = null;
  protected hasBody = false;
  protected body: RequestBody | null = null;
  protected readonly upstreamHeaders: string[] = [];
  protected downstreamGone = false;
  protected slots: unknown[] | undefined = undefined;
  protected tlsInfo: TlsInfo | undefined | null = null;
  private forwardedClient: string | undefined = undefined;

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

  get clientAddress(): string {
    // head.xff survives only from a trusted proxy (constructor).
    if (this.forwardedClient === undefined) this.forwardedClient = this.head.xff === undefined ? this.clientIp : realClientIp(this.head.xff, this.clientIp, this.runtime.forward.trusted);
    return this.forwardedClient;
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

  protected ensureBody(): RequestBody {
    if (this.body === null) {
      this.body = new RequestBody(this, this.req, this.runtime.config.timeouts.body_idle);
      // A body received whole but not yet read is not the client's gap (body-idle.ts).
      watchCompleteBody(this.req, this.res);
    }
    return this.body;
  }

  protected doneEvent(): DoneEvent {
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

  // BodyOwner (the Exchange answers these)
  abstract bodyBuffered(): void;
  abstract bodyEnded(): void;
  abstract bodyIdle(): void;
  abstract bodyTooLarge(): void;
  /** The downstream response closed (finished, or the client left). */
  abstract downstreamClosed(): void;
}

function onDownstreamClose(this: WithExchange<ServerResponse>): void {
  this[kExchange]!.downstreamClosed();
}
