// The request path as named phases (Pingora's one interface, many phases; docs/filters.md).
// A filter implements the hooks it needs; the route compiler (compile.ts) copies each filter
// into the phase arrays of the hooks it has, once per config, so an empty phase costs one
// length check and nothing is merged per request. The runner (runner.ts) owns the order.
//
//   early_request     listener   before routing (TLS edge, access lists, global limits, WAF headers)
//   request           route      auth, rate limits, redirects, cache lookup — may answer locally
//   request_body      route      opt-in: the whole body, within a bound (inspect or replace)
//   upstream_peer     route      which upstream (a traffic split); the cluster then picks a server
//   upstream_request  route      last edits to the upstream head (path rewrite, header rules, mirror)
//   upstream_response route      the upstream's head before anything is stored
//   upstream_failed   route      no upstream answer (connect error, timeout, reset): a stored reply may stand in
//   response          route      every head that goes downstream: proxied, local reply, an upgrade's 101
//   response_body     route      opt-in streaming transform with backpressure
//   done              request    exactly once, whatever happened
//
// Filters see usher's own view of the request (RequestContext), never node's IncomingMessage
// or ServerResponse: the HTTP data path underneath can change without touching a filter.

import type { Readable, Transform } from 'node:stream';
import type { RouteConfig, SourceLocation } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import type { RouteRequest } from '../router/request.js';
import type { Cluster } from '../upstream/cluster.js';

export const PHASES = [
  'early_request',
  'request',
  'request_body',
  'upstream_peer',
  'upstream_request',
  'upstream_response',
  'upstream_failed',
  'response',
  'response_body',
  'done',
] as const;
export type PhaseName = (typeof PHASES)[number];

export type MaybePromise<T> = T | Promise<T>;

/** A reply a filter makes instead of proxying (auth denied, rate limited, redirect, cache hit...). */
export interface LocalResponse {
  status: number;
  /** Flat name/value pairs. */
  headers?: readonly string[];
  body?: string | Buffer | StreamedBody;
  /** The registry code logged for it (default `local_response`). */
  reason?: ReasonCode;
  /**
   * The filter vouches that `headers` is a fresh array of fields node:http writes as they are,
   * without Content-Length or Transfer-Encoding (the cache's stored fields, checked once when
   * first served): the exchange appends to it instead of checking and copying it per reply.
   */
  checked?: boolean;
  /**
   * No answer at all (the WAF's `drop`): HTTP/1.x destroys the connection, HTTP/2 resets the
   * stream with PROTOCOL_ERROR (what nginx 1.22 does for its `return 444`); status, headers and body
   * are then only what the logs record. The response hooks do not run; `done` does.
   */
  drop?: boolean;
}

/**
 * A body a local reply streams from elsewhere (a cache file), its length known before the head.
 * `open` is called once when the body is written (never for HEAD, 204 or 304); a failing stream
 * resets the response. `close` releases what it holds when it was never opened; the filter that
 * made it calls it from its `done` hook (an unopened body costs nothing then).
 */
export interface StreamedBody {
  readonly length: number;
  open(): Readable;
  close(): void;
}

/** A hook of a request-side phase: nothing to go on, or a local reply. */
export type RequestHookResult = MaybePromise<LocalResponse | undefined | void>;

/** What a response hook sees and may edit: the status and a flat name/value array. */
export interface ResponseHead {
  status: number;
  readonly headers: string[];
  /** Set for a reply usher made itself (a filter's, a `respond:` route's, an error). */
  readonly local: boolean;
}

/** The upstream request as the route sends it: target in origin-form and a flat head. */
export interface UpstreamRequestHead {
  readonly method: string;
  target: string;
  readonly headers: string[];
}

/** The TLS facts of the downstream connection. */
export interface TlsInfo {
  readonly servername: string | undefined;
  /** The verified client certificate's identity fields (X-Client-Cert-* pairs), empty when none. */
  readonly clientIdentity: readonly string[];
}

/** Per-request timings (performance.now() milliseconds); unset until the phase happened. */
export interface Timings {
  readonly start: number;
  routed: number | undefined;
  upstreamStart: number | undefined;
  responseStart: number | undefined;
  end: number | undefined;
}

/** A typed slot for a filter's per-request state: `const k = stateKey<T>('name')`. */
export interface StateKey<T> {
  readonly id: number;
  readonly name: string;
  /** Phantom: ties the key to its value type. */
  readonly type?: T;
}

let nextStateId = 0;
export function stateKey<T>(name: string): StateKey<T> {
  return Object.freeze({ id: nextStateId++, name });
}

/** Sees the bytes of the request body as they go upstream (never pausing or replacing them). */
export interface BodyObserver {
  data(chunk: Buffer): void;
  /** `complete`: the whole body passed; false when it was cut (client gone, never read). */
  end(complete: boolean): void;
}

/** The per-request context every hook sees. */
export interface RequestContext {
  readonly requestId: string;
  readonly method: string;
  /** The request target as received (origin-form, absolute-form or "*"). */
  readonly target: string;
  readonly httpVersion: '1.0' | '1.1' | '2';
  readonly scheme: 'http' | 'https';
  /** The request head as received, flat name/value pairs (HTTP/2 in HTTP/1.1 form). */
  readonly headers: readonly string[];
  /** A field by lower-case name; repeated fields are joined with ", " (RFC 9110 §5.3). */
  header(name: string): string | undefined;
  /** The TCP peer's address. */
  readonly clientIp: string;
  /**
   * The client's address after `proxy.trusted_proxies`: `clientIp`, or when that is a trusted
   * proxy that sent X-Forwarded-For, the right-most forwarded address that is not a trusted
   * proxy (what X-Real-IP carries upstream). Access lists and per-client limits judge this one.
   */
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Undefined on a plain-text connection. */
  readonly tls: TlsInfo | undefined;
  /** The upgrade protocol asked for ("websocket"), or undefined. */
  readonly upgrade: string | undefined;
  /** The normalised view routing used (host, path, query, cookies); undefined before routing. */
  readonly request: RouteRequest | undefined;
  /** The route that took the request; undefined before routing or when none matched. */
  readonly route: CompiledRoute | undefined;
  /** The upstream chosen (upstream_peer) and the server of the last try. */
  readonly upstream: { readonly name: string | undefined; readonly server: string | undefined; readonly attempts: number };
  /** The head sent downstream once it is known (proxied or local). */
  readonly response: ResponseHead | undefined;
  /** How the request ended (a registry code) when it did not end with a proxied response. */
  readonly reason: ReasonCode | undefined;
  readonly timings: Timings;
  get<T>(key: StateKey<T>): T | undefined;
  set<T>(key: StateKey<T>, value: T): void;
  /** Observes the request body as it streams upstream (mirroring): false when there is none. */
  observeRequestBody(observer: BodyObserver): boolean;
  /**
   * True under `usher explain`: hooks run as they would for this request, but must send, count
   * and store nothing (a mirror sends no copy, a rate limit takes no token).
   */
  readonly explaining: boolean;
}

/** Opt-in request body phase: the whole body, read up to `max_bytes` (beyond it: 413). */
export interface RequestBodyHook {
  readonly maxBytes: number;
  /** May answer locally, or return a new body to send instead. */
  inspect(ctx: RequestContext, body: Buffer): MaybePromise<LocalResponse | Buffer | undefined | void>;
}

/**
 * Opt-in: judges the upstream's response before any byte of it goes downstream (the WAF's
 * phases 3 and 4). `head` sees the upstream's head, before upstream_response: it may answer
 * instead (a LocalResponse: the upstream response is dropped, the reply passes `response` and
 * `done` like any), go on (undefined or 0), or ask for up to `n` bytes of the body first. Those
 * are read and held (nothing goes downstream meanwhile), then `body` sees them; `complete`
 * says the body ended within them. Synchronous: it must not wait.
 */
export interface ResponseInspectHook {
  head(ctx: RequestContext, head: ResponseHead): LocalResponse | number | undefined;
  body(ctx: RequestContext, head: ResponseHead, body: Buffer, complete: boolean): LocalResponse | undefined;
}

export interface Filter {
  readonly name: string;
  earlyRequest?(ctx: RequestContext): RequestHookResult;
  request?(ctx: RequestContext): RequestHookResult;
  readonly requestBody?: RequestBodyHook;
  /** Which upstream takes the request (synchronous: a pure choice over the route's clusters). */
  upstreamPeer?(ctx: RequestContext): Cluster | undefined;
  /** Edits the head; like every request-side hook it may answer locally instead. */
  upstreamRequest?(ctx: RequestContext, head: UpstreamRequestHead): RequestHookResult;
  upstreamResponse?(ctx: RequestContext, head: ResponseHead): MaybePromise<void>;
  /** Before upstream_response: the head, and the body held up to a bound (ResponseInspectHook). */
  readonly responseInspect?: ResponseInspectHook;
  /**
   * The upstream gave no response (`reason`: a connect failure, a timeout, a reset...) while the
   * head is unsent: a reply to send instead of usher's error (a cache's stale response,
   * stale-if-error), or undefined. Synchronous; it passes `response` and `done` like any reply.
   */
  upstreamFailed?(ctx: RequestContext, reason: ReasonCode): LocalResponse | undefined;
  response?(ctx: RequestContext, head: ResponseHead): MaybePromise<void>;
  /**
   * A transform for this response's body, or undefined. It may change the length: the response
   * then loses its Content-Length (chunked on HTTP/1.1), unless the transform says what it
   * emits with `outputLength` (BodyLength).
   */
  responseBody?(ctx: RequestContext, head: ResponseHead): Transform | undefined;
  /** Exactly once per request. Synchronous; a throw is logged and ignored. */
  done?(ctx: RequestContext): void;
  /** One line for `usher explain`: what this filter does on this route. */
  explain?(): string;
}

/** A route's filters by phase, in run order (response-side phases already reversed, as Envoy). */
export interface PhaseArrays {
  readonly request: readonly Filter[];
  readonly requestBody: readonly Filter[];
  readonly upstreamPeer: readonly Filter[];
  readonly upstreamRequest: readonly Filter[];
  readonly upstreamResponse: readonly Filter[];
  readonly responseInspect: readonly Filter[];
  readonly upstreamFailed: readonly Filter[];
  readonly response: readonly Filter[];
  readonly responseBody: readonly Filter[];
  readonly done: readonly Filter[];
}

/** A `respond:` action, pre-rendered at load time. */
export interface CompiledRespond {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly source: SourceLocation;
  readonly config: RouteConfig;
  /** The route's upstream; undefined for a split (an upstream_peer filter chooses) or no upstream. */
  readonly cluster: Cluster | undefined;
  readonly respond: CompiledRespond | undefined;
  /** Every filter of the route in declaration order (for explain). */
  readonly filters: readonly Filter[];
  readonly phases: PhaseArrays;
  /** The largest request_body bound of the route's filters (0: no request_body phase). */
  readonly requestBodyLimit: number;
  /** Where metrics keep this route's series once bound (null until then; metrics off: stays null). */
  readonly meters: MeterSlot;
}

/** A slot metrics bind their series into, once per route / cluster / endpoint object. */
export interface MeterSlot {
  value: unknown;
}

/** A listener's own filters (the TLS edge, access lists...): outermost on every request. */
export interface ListenerChain {
  readonly early: readonly Filter[];
  readonly response: readonly Filter[];
  readonly done: readonly Filter[];
}

/**
 * What a response_body transform emits, when it knows: 'input' for one that passes every byte
 * unchanged (a cache's copy as it streams), or a number of bytes (a stored body sent in place of
 * the upstream's). The response keeps (or gets) its Content-Length when every transform says.
 */
export interface BodyLength {
  readonly outputLength?: 'input' | number;
}
