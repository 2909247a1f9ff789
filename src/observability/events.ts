// The request path's events on node:diagnostics_channel, at the phase boundaries. The access
// log (access-log.ts) subscribes to `usher:request:done`; metrics and tracing will subscribe to
// the rest. A publisher checks `hasSubscribers` first: nothing is computed for an event nobody
// subscribes to. Every message carries `ctx`, the request's RequestContext, and `server`, the
// usher instance it belongs to (several may share a process).
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { ReasonCode } from '../errors/index.js';
import type { RequestContext } from '../pipeline/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { Endpoint } from '../upstream/endpoint.js';

export const CHANNELS = Object.freeze({
  requestStart: 'usher:request:start',
  routed: 'usher:request:routed',
  upstreamTry: 'usher:upstream:try',
  connectError: 'usher:upstream:connect_error',
  upstreamConnected: 'usher:upstream:connected',
  upstreamResponse: 'usher:upstream:response',
  retry: 'usher:upstream:retry',
  done: 'usher:request:done',
});

/** The proxy listeners' events (connections and TLS handshakes, not requests). */
export const LISTENER_CHANNELS = Object.freeze({
  connection: 'usher:connection:open',
  tls: 'usher:tls:handshake',
});

export const requestStartChannel = diagnostics.channel(CHANNELS.requestStart);
export const routedChannel = diagnostics.channel(CHANNELS.routed);
export const upstreamTryChannel = diagnostics.channel(CHANNELS.upstreamTry);
export const connectErrorChannel = diagnostics.channel(CHANNELS.connectError);
export const upstreamConnectedChannel = diagnostics.channel(CHANNELS.upstreamConnected);
export const upstreamResponseChannel = diagnostics.channel(CHANNELS.upstreamResponse);
export const retryChannel = diagnostics.channel(CHANNELS.retry);
export const doneChannel = diagnostics.channel(CHANNELS.done);
export const connectionChannel = diagnostics.channel(LISTENER_CHANNELS.connection);
export const tlsChannel = diagnostics.channel(LISTENER_CHANNELS.tls);

interface Base {
  readonly server: unknown;
  readonly ctx: RequestContext;
}

/** usher:request:start — the head arrived (before early_request). */
export type RequestStartEvent = Base;
/** usher:request:routed — a route took the request. */
export interface RoutedEvent extends Base {
  readonly route: string;
}
/** usher:upstream:try — try `attempt` (0-based) goes to `upstreamServer`. */
export interface UpstreamTryEvent extends Base {
  readonly upstream: string;
  readonly upstreamServer: string;
  /** The objects behind the names (metrics bind their series to them once). */
  readonly cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly attempt: number;
  /** The method and origin-form target this try sends. */
  readonly method: string;
  readonly target: string;
  /** The head this try sends (flat name/value pairs), editable until the event returns: the tracer sets traceparent in it. */
  readonly headers: string[];
}
/** usher:upstream:connect_error — a try failed before it had a connection. */
export interface ConnectErrorEvent extends Base {
  readonly upstream: string;
  readonly upstreamServer: string;
  /** The objects behind the names (metrics bind their series to them once). */
  readonly cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly reason: ReasonCode;
}
/**
 * usher:upstream:connected — a try has a connection to send on (undici's onConnect). `waitMs`:
 * how long it waited for one since it was ready to go: the circuit breaker's queue (a first
 * try), undici's pool queue, and for a new connection its connect and TLS handshake. The
 * exchange takes the time it starts from only while this channel has subscribers.
 */
export interface UpstreamConnectedEvent extends Base {
  readonly upstream: string;
  readonly cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly attempt: number;
  readonly waitMs: number;
}
/** usher:upstream:response — the upstream's final head arrived. */
export interface UpstreamResponseEvent extends Base {
  readonly upstream: string;
  readonly upstreamServer: string;
  /** The objects behind the names (metrics bind their series to them once). */
  readonly cluster: Cluster;
  readonly endpoint: Endpoint;
  readonly status: number;
}
/** usher:upstream:retry — the request goes to another server after `reason`. */
export interface RetryEvent extends Base {
  readonly upstream: string;
  readonly cluster: Cluster;
  readonly reason: ReasonCode;
  /** The retry's number (1 for the first retry). */
  readonly attempt: number;
  readonly backoff: boolean;
  /** The status of the failed try's response (a retried 5xx), or null when it had none. */
  readonly status: number | null;
}
/** usher:request:done — exactly once per request. */
export interface DoneEvent extends Base {
  /** The Host the request named (or its absolute-form authority), as received. */
  readonly host: string | null;
  /** The status sent downstream; 0 when none was (the client left, or the stream was reset). */
  readonly status: number;
  readonly reason: ReasonCode | null;
  /** Bytes read from / written to the downstream connection for this request; null on HTTP/2. */
  readonly bytesIn: number | null;
  readonly bytesOut: number | null;
  /** Milliseconds from the head's arrival to the end. */
  readonly durationMs: number;
}

/** usher:connection:open — a proxy listener accepted a TCP connection (before any TLS handshake). */
export interface ConnectionEvent {
  readonly server: unknown;
  /** The listener object (stable for its life) and its address as configured. */
  readonly listener: object;
  readonly address: string;
  readonly tls: boolean;
  readonly socket: Socket;
}

/** usher:tls:handshake — a TLS handshake on a proxy listener ended (ok, or failed with `error`). */
export interface TlsHandshakeEvent {
  readonly server: unknown;
  readonly listener: object;
  readonly address: string;
  readonly ok: boolean;
  /** The OpenSSL or node error code of a failed handshake ("ERR_SSL_...", "ECONNRESET"). */
  readonly error: string | null;
}

