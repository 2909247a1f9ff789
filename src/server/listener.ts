import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import type { ListenerConfig, UsherConfig } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import { rawErrorReply } from '../proxy/local-reply.js';
import { newRequestId } from '../observability/request-id.js';
import { connectionChannel, tlsChannel, type ConnectionEvent, type TlsHandshakeEvent } from '../observability/events.js';
import { listenerChain } from '../pipeline/compile.js';
import type { ListenerFilterDefinition } from '../pipeline/registry.js';
import { handleRequest, kResponse, type HandlerOwner, type ListenerEntry, type ResponseSocket } from './handler.js';
import { H2Front } from './h2.js';
import { KeepAliveIdle } from './keep-alive.js';
import { closeTunnels } from '../proxy/upgrade.js';
import { handleConnect, handleUpgrade } from './upgrade.js';
import { TlsEdge } from '../tls/edge.js';
import { listenerAccess, type ListenerAccess } from '../filters/access/index.js';
import { listenerSecurityHeaders, type ListenerSecurityHeaders } from '../filters/security-headers/index.js';
import type { Filter, ListenerChain } from '../pipeline/types.js';
import { GlobalRateLimit } from '../filters/rate-limit/index.js';
import { ListenerTls, type TlsLog } from '../tls/listener-tls.js';
import type { CertSource } from '../tls/source.js';

export interface ListenerOwner extends HandlerOwner {
  /** A request that failed before it reached a handler (parse error, head timeout...). */
  clientError(reason: ReasonCode, detail: string, socket: Socket): void;
  /** The listening socket itself failed after it was bound. */
  listenerError(listener: Listener, err: Error): void;
  readonly logger: TlsLog;
  /** Certificates obtained by ACME, when configured. */
  readonly certSource?: CertSource | undefined;
  /** Counted for the "stopped" log line. */
  readonly stats: { connections: number };
  /** The embedding program's listener filters (UsherOptions.listenerFilters). */
  readonly listenerFilters?: readonly ListenerFilterDefinition<undefined>[];
  /** rate_limits.connections_per_client: false closes the connection at once; a promise (the primary counts, with workers) before anything is read. */
  admitConnection?(socket: Socket): boolean | Promise<boolean>;
  /** A worker whose primary chose workers_mechanism reuse_port: listen with SO_REUSEPORT. */
  readonly reusePort?: boolean;
}

/** One downstream listener (HTTP/1.1, optionally over TLS). */
export class Listener {
  readonly config: ListenerConfig;
  readonly server: Server;
  private readonly owner: ListenerOwner;
  /** HTTP/2 on this listener (listeners[].http2), next to HTTP/1.1. */
  readonly h2: H2Front | undefined;
  /** Client sockets of open upgrade tunnels (WebSockets): not tracked by node:http once upgraded. */
  readonly tunnels = new Set<Socket>();
  /** TLS state (certificates, SNI, reload) and the HTTP edge hooks (mTLS headers, HSTS, redirect). */
  readonly tls: ListenerTls | undefined;
  private readonly edge: TlsEdge;
  /** The listener's access list (listeners[].access), judged at accept and per request. */
  private access: ListenerAccess | undefined;
  /** listeners[].security_headers: on every response of this listener whose route has none. */
  private security: ListenerSecurityHeaders | undefined;
  /** The embedding program's listener filters, built once (a reload that rebuilds the chain keeps them). */
  private readonly extraFilters: readonly (Filter | undefined)[];
  /** rate_limits.global: of the runtime serving at the time (a reload changes them). */
  private readonly globalLimits: GlobalRateLimit;
  /** Whether the current chain holds globalLimits. */
  private withGlobalLimits = false;
  private edgeConfig: ListenerConfig;
  /** What every request of this listener carries into the request path: its filters. */
  readonly entry: ListenerEntry;
  /** Idle keep-alive connections: timed by usher, not node (keep-alive.ts: no Keep-Alive field). */
  private readonly idle: KeepAliveIdle;

  constructor(owner: ListenerOwner, config: ListenerConfig, settings: UsherConfig) {
    this.owner = owner;
    this.config = config;
    const t = settings.timeouts;
    const idle = (this.idle = new KeepAliveIdle(t.keep_alive));
    const options = {
      // 0: node would write "Keep-Alive: timeout=N" into every response; usher times idle connections itself.
      keepAliveTimeout: 0,
      headersTimeout: t.request_header,
      // The whole-request timer would cut long uploads; usher times body gaps instead (body_idle).
      requestTimeout: 0,
      maxHeaderSize: settings.limits.header_size,
      // Node checks header timeouts on this interval; keep it well under the timeout itself.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(t.request_header / 4))),
      // usher answers a missing Host itself, with its reason code.
      requireHostHeader: false,
    };
    this.tls = config.tls ? new ListenerTls(config.tls, owner.certSource, owner.logger) : undefined;
    this.edge = new TlsEdge(config, this.tls, owner.certSource);
    this.edgeConfig = config;
    // Every request on this listener — HTTP/1.1, HTTP/2, upgrades — enters handleRequest with the
    // listener's filters: the TLS edge (HSTS, ACME HTTP-01, redirect) runs as early_request and
    // response hooks; forged X-Client-Cert-* are stripped and the verified identity added first.
    // The access list comes first: a denied client is told nothing else (not even a redirect).
    this.access = listenerAccess(config);
    this.security = listenerSecurityHeaders(config);
    this.extraFilters = (owner.listenerFilters ?? []).map((d) => d.create(config, undefined));
    this.globalLimits = new GlobalRateLimit(() => owner.runtime.globalLimits);
    const tls = this.tls;
    const entry: ListenerEntry = (this.entry = {
      chain: this.chain(),
      get clientAuth() {
        return tls !== undefined && tls.config.client_auth !== null;
      },
    });
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      idle.request(req, res);
      handleRequest(owner, entry, req, res, false);
    };
    // ALPN is chosen by ListenerTls's callback (it also answers acme-tls/1), so h2 is offered there.
    this.server = this.tls
      ? createHttpsServer({ ...options, ...this.tls.serverOptions(config.http2 ? ['h2', 'http/1.1'] : ['http/1.1']) }, onRequest)
      : createHttpServer(options, onRequest);
    this.tls?.attach(this.server as unknown as TlsServer);
    this.h2 = config.http2 ? new H2Front(owner, entry, this.server, config.http2, settings, config.tls !== undefined) : undefined;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(owner, entry, this.tunnels, req, socket as Socket, head));
    this.applySettings(settings);
    if (this.tls !== undefined) {
      // Handshake outcomes for metrics; node destroys a socket whose handshake failed whether or not 'tlsClientError' has a listener.
      this.server.on('secureConnection', () => {
        if (tlsChannel.hasSubscribers) tlsChannel.publish({ server: owner, listener: this, address: config.address, ok: true, error: null } satisfies TlsHandshakeEvent);
      });
      this.server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
        if (tlsChannel.hasSubscribers) tlsChannel.publish({ server: owner, listener: this, address: config.address, ok: false, error: err.code ?? 'error' } satisfies TlsHandshakeEvent);
      });
    }
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      idle.request(req, res);
      handleRequest(owner, entry, req, res, true);
    });
    this.server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => this.onClientError(err, socket as Socket));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex) => handleConnect(owner, entry, this.tunnels, req, socket as Socket));
    // Last, so that it wraps every connection listener (node's HTTP or TLS one, HTTP/2's sniffer):
    // a connection the access list denies reaches none of them, nor one over
    // rate_limits.connections_per_client. TCP connections: TLS and HTTP/2 ones too (before their handshake).
    const accepted = this.server.listeners('connection') as ((socket: Socket) => void)[];
    this.server.removeAllListeners('connection');
    const handOver = (socket: Socket) => {
      for (const l of accepted) l.call(this.server, socket);
    };
    this.server.on('connection', (socket: Socket) => {
      if (this.access !== undefined && !this.admit(this.access, socket)) return;
      owner.stats.connections++;
      if (connectionChannel.hasSubscribers) connectionChannel.publish({ server: owner, listener: this, address: config.address, tls: this.tls !== undefined, socket } satisfies ConnectionEvent);
      const admitted = owner.admitConnection === undefined ? true : owner.admitConnection(socket);
      if (admitted === true) return handOver(socket);
      if (admitted === false) return refuse(socket);
      // Counted in the primary across workers: nothing reads the socket until it answers (what
      // arrives meanwhile waits in the socket's buffer for node's HTTP or TLS listener).
      socket.on('error', ignore);
      admitted.then(
        (ok) => {
          // Stopped meanwhile: a socket handed over now would outlive stopAccepting and closeAll.
          if (!ok || this.stopping) return refuse(socket);
          socket.off('error', ignore);
          if (!socket.destroyed) handOver(socket);
        },
        () => refuse(socket),
      );
    });
  }

  /**
   * The accept-time half of the listener's access list (filters/access/index.ts): only the peer
   * is known. A peer that is a trusted proxy is let through, its requests judged one by one on
   * the address it forwards; any other peer is judged now, and a denied one is closed unanswered.
   */
  private admit(access: ListenerAccess, socket: Socket): boolean {
    const peer = socket.remoteAddress;
    if (peer === undefined) return true; // already gone
    const trusted = this.owner.runtime.forward.trusted;
    if (trusted !== null && trusted.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4')) return true;
    const d = access.list.decide(peer);
    if (d.allow) return true;
    this.owner.clientError('access_denied', `listener ${this.config.address}: ${d.rule}`, socket);
    socket.on('error', ignore);
    socket.destroy();
    return false;
  }

  /** Settings that can change on a live server at reload (header_size cannot: it needs a restart). */
  applySettings(settings: UsherConfig): void {
    this.idle.timeout = settings.timeouts.keep_alive;
    this.server.headersTimeout = settings.timeouts.request_header;
    // Node silently truncates past maxHeadersCount; one more than the limit lets usher see the excess and answer 431.
    this.server.maxHeadersCount = settings.limits.header_count + 1;
    this.applyTls(settings);
    // rate_limits.global: the hook is in the chain only while the serving runtime has global
    // policies (this runs after a reload swapped the runtime), so no request pays for none.
    if ((this.owner.runtime.globalLimits !== undefined) !== this.withGlobalLimits) this.entry.chain = this.chain();
  }

  /** A reload: this listener's new TLS settings and files, redirect target (same address and TLS on/off). */
  private applyTls(settings: UsherConfig): void {
    const next = settings.listeners.find((l) => l.host === this.config.host && l.port === this.config.port && (l.tls === undefined) === (this.tls === undefined));
    if (next === undefined || next === this.edgeConfig) return;
    this.edgeConfig = next;
    this.edge.update(next);
    this.applyAccess(next);
    try {
      if (next.tls !== undefined) this.tls?.update(next.tls);
    } catch (err) {
      this.owner.logger.error({ err, address: this.config.address }, 'TLS settings not applied: a certificate could not be loaded; still serving the previous ones');
    }
  }

  /** The listener's filters in order: the access list, the TLS edge, global rate limits, security headers, the embedding program's. */
  private chain(): ListenerChain {
    this.withGlobalLimits = this.owner.runtime.globalLimits !== undefined;
    return listenerChain([this.access, this.edge, this.withGlobalLimits ? this.globalLimits : undefined, this.security, ...this.extraFilters]);
  }

  /**
   * A reload: the new access list applies to new connections and to the next request of open
   * ones, the new security headers to the next response. Requests in flight keep their chain.
   */
  private applyAccess(next: ListenerConfig): void {
    const rebuild = (this.access === undefined) !== (next.access === undefined) || (this.security === undefined) !== (next.security_headers === undefined);
    if (this.access !== undefined && next.access !== undefined) this.access.update(next.access);
    else this.access = listenerAccess(next);
    if (this.security !== undefined && next.security_headers !== undefined) this.security.rules = next.security_headers;
    else this.security = listenerSecurityHeaders(next);
    if (rebuild) this.entry.chain = this.chain();
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      // A worker of workers_mechanism reuse_port binds the port itself (mechanism.ts); port 0 is
      // shared through node:cluster, since each worker would get a port of its own.
      const reusePort = this.owner.reusePort === true && this.config.port !== 0;
      this.server.listen({ host: this.config.host, port: this.config.port, ...(reusePort ? { reusePort: true } : {}) }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.owner.listenerError(this, err));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** stopAccepting was called: connections still waiting for the primary's count are refused. */
  private stopping = false;

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting and closes idle keep-alive connections; busy ones close after their response. */
  stopAccepting(): Promise<void> {
    this.stopping = true;
    this.tls?.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      this.h2?.close();
    });
  }

  closeAll(): void {
    this.server.closeAllConnections();
    this.h2?.destroy();
    closeTunnels(this.tunnels);
  }

  /** Requests that never reached a handler: malformed, too large, too slow. */
  private onClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket): void {
    socket.on('error', ignore);
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const reason = clientErrorReason(err, this.owner.runtime.config.limits.request_line);
    this.owner.clientError(reason, err.code ?? err.message, socket);
    const res = (socket as ResponseSocket)[kResponse];
    // A raw reply is safe only when it cannot be confused with another response on this
    // connection: no earlier response, or that exchange is entirely done, or the error is in the
    // body of the current request before any response to it started.
    const safe = res === undefined || (res.writableFinished && res.req.complete) || (!res.headersSent && !res.req.complete);
    if (!safe) {
      // The parser failed while an earlier response on this connection is not finished: either
      // that response has started (a bad chunk while proxying, or a local reply to a head llhttp
      // rejects only after the handler ran), or its request is complete and the error belongs to
      // a pipelined request behind it. A raw reply now would be spliced into, or taken for, that
      // response. An ended local reply is let flush; anything else is cut.
      if (res.writableEnded) socket.destroySoon();
      else socket.destroy();
      return;
    }
    socket.end(rawErrorReply(reason, newRequestId(), this.owner.runtime.forward.requestIdHeader));
    socket.destroySoon();
  }
}

function ignore(): void {}

/** "METHOD SP" then the start of an origin-, absolute- or asterisk-form target (RFC 9112 §3). */
const REQUEST_LINE_START = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ (?:\/|\*|[A-Za-z][A-Za-z0-9+.-]*:\/\/)/;

/** Maps llhttp / node:http parse errors to reason codes. */
export function clientErrorReason(err: { code?: string; rawPacket?: Buffer }, requestLineLimit: number): ReasonCode {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'request_header_timeout';
    case 'HPE_HEADER_OVERFLOW': {
      // The head overflowed. If its first line alone is over the request-line limit, say 414.
      // rawPacket is only the chunk being parsed, not the whole head: unless it starts with the
      // request line, it says nothing about that line (the head spanned several reads) → 431.
      const packet = err.rawPacket;
      if (packet !== undefined && REQUEST_LINE_START.test(packet.toString('latin1', 0, 64))) {
        const eol = packet.indexOf('\r\n');
        if (eol < 0 || eol > requestLineLimit) return 'request_line_too_long';
      }
      return 'headers_too_large';
    }
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return 'ambiguous_framing';
    default:
      return 'bad_request';
  }
}

/** A connection over rate_limits.connections_per_client: closed without a byte. */
function refuse(socket: Socket): void {
  socket.on('error', ignore);
  socket.destroy();
}
