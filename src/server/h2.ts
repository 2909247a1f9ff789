// HTTP/2 next to HTTP/1.1 on one listener. The listener's own http/https server keeps every
// HTTP/1.1 behaviour (timeouts, limits, clientError replies); connections that speak HTTP/2 are
// handed to a node:http2 server that never listens itself:
//   - over TLS, by ALPN: the https server offers "h2" and "http/1.1" (RFC 9113 §3.2, RFC 7301),
//     and a TLS socket that negotiated "h2" goes to the http2 server;
//   - in cleartext, by the connection preface (prior knowledge, RFC 9113 §3.3): a connection whose
//     first bytes are "PRI " is HTTP/2, anything else goes to the HTTP/1.1 parser.
// HTTP/2 requests then take the same request path as HTTP/1.1 (handler.ts → Exchange) through
// node's compatibility API, after their header list is rewritten to HTTP/1.1 form (h2-headers.ts).
// Because the TLS options stay in the one place the listener builds them, an SNI callback or
// client-certificate options plugged in there apply to HTTP/2 as well.

import {
  constants,
  createServer as createH2Server,
  type Http2ServerRequest,
  type Http2Server,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Http2Settings, UsherConfig } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import { handleRequest, newExchange, type HandlerOwner, type ListenerEntry } from './handler.js';
import { toHttp1Headers } from './h2-headers.js';
import { markUpgrade } from '../proxy/upgrade.js';
import { prepareH2WebSocket } from '../proxy/upgrade-h2.js';

const PREFACE = Buffer.from('PRI ');

interface ResetGuard {
  resets: number;
  /** Streams opened in the same window. */
  streams: number;
  windowStart: number;
  readonly front: H2Front;
  readonly session: Http2Session;
}

const kGuard = Symbol('usher.h2.guard');
const kFront = Symbol('usher.h2.front');
type GuardedSession = Http2Session & { [kGuard]?: ResetGuard };
type GuardedStream = ServerHttp2Stream & { [kGuard]?: ResetGuard };
type SniffSocket = Socket & { [kFront]?: H2Front; usherSniffed?: Buffer };

/** The HTTP/2 side of one listener. */
export class H2Front {
  readonly h2: Http2Server;
  readonly settings: Http2Settings;
  private readonly sessions = new Set<Http2Session>();
  /** The connections handed to node's HTTP/2 server (the cut in destroy() needs them). */
  private readonly sockets = new Set<Socket>();
  private readonly http1: ((socket: Socket) => void)[];
  private readonly server: Server;
  private readonly owner: HandlerOwner;
  private readonly entry: ListenerEntry;
  private readonly idleMs: number;
  private readonly sniffMs: number;
  private closing = false;

  constructor(owner: HandlerOwner, entry: ListenerEntry, server: Server, settings: Http2Settings, config: UsherConfig, tls: boolean) {
    this.owner = owner;
    this.entry = entry;
    this.server = server;
    this.settings = settings;
    this.idleMs = config.timeouts.keep_alive;
    this.sniffMs = config.timeouts.request_header;
    this.h2 = createH2Server({
      settings: {
        maxConcurrentStreams: settings.max_concurrent_streams,
        maxHeaderListSize: settings.max_header_list_size,
        // RFC 8441 §3: lets clients open WebSockets with an extended CONNECT.
        enableConnectProtocol: config.upgrade.protocols.includes('websocket'),
      },
      // node takes megabytes here.
      maxSessionMemory: Math.max(1, Math.ceil(settings.max_session_memory / (1024 * 1024))),
      // Pseudo-headers count as pairs too; usher answers more than limits.header_count with 431.
      maxHeaderListPairs: config.limits.header_count + 8,
    });
    this.h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(this.owner, this.entry, req, res, false));
    this.h2.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(this.owner, this.entry, req, res, true));
    // node's compatibility layer emits CONNECT (and RFC 8441 extended CONNECT) separately.
    this.h2.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(this.owner, this.entry, req, res, false));
    this.h2.on('session', (session: Http2Session) => this.onSession(session));
    this.h2.on('sessionError', ignore);
    // Take over the connection event the HTTP/1.1 server listens to, and pass HTTP/1.1 on to it.
    const event = tls ? 'secureConnection' : 'connection';
    this.http1 = server.listeners(event) as ((socket: Socket) => void)[];
    server.removeAllListeners(event);
    if (tls) server.on(event, (socket: Socket & { alpnProtocol?: string | false }) => (socket.alpnProtocol === 'h2' ? this.toH2(socket) : this.toHttp1(socket)));
    else server.on(event, (socket: Socket) => this.sniff(socket));
  }

  /** Graceful: GOAWAY to every session; open streams finish (RFC 9113 §6.8). */
  close(): void {
    this.closing = true;
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  destroy(): void {
    for (const s of this.sessions) s.destroy();
    // A session that was close()d first (stopAccepting) and is then destroyed only ends its
    // socket and waits for the peer's FIN (node's finishSessionClose destroys the socket only
    // when the session was not closed gracefully). A client that keeps its side open — one
    // that ignores GOAWAY, or node 24's client while it holds a stream it has not read to the
    // end — then held the listener's close(), and usher's shutdown, forever. Cut them here.
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Rapid Reset (CVE-2023-44487): too many resets in the window, and at least half of the
   * streams opened in it, → GOAWAY and close. The ratio (as Envoy's premature-reset check) spares
   * a busy connection whose client cancels some calls (gRPC deadlines): closing it would also
   * cut every request in flight on it. An attack is (nearly) all resets.
   */
  countReset(guard: ResetGuard): void {
    const session = guard.session;
    this.rollWindow(guard);
    if (++guard.resets > this.settings.max_resets && guard.resets * 2 >= guard.streams && !session.destroyed) {
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    }
  }

  countStream(guard: ResetGuard): void {
    this.rollWindow(guard);
    guard.streams++;
  }

  private rollWindow(guard: ResetGuard): void {
    const now = Date.now();
    if (now - guard.windowStart > this.settings.reset_window) {
      guard.windowStart = now;
      guard.resets = 0;
      guard.streams = 0;
    }
  }

  private onSession(session: Http2Session): void {
    (session as GuardedSession)[kGuard] = { resets: 0, streams: 0, windowStart: Date.now(), front: this, session };
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    session.on('error', ignore);
    session.on('stream', onSessionStream);
    session.setTimeout(this.idleMs, () => session.close());
    if (this.closing) session.close();
  }

  private toH2(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.h2.emit('connection', socket);
  }

  private toHttp1(socket: Socket): void {
    for (const listener of this.http1) listener.call(this.server, socket);
  }

  /** Cleartext: read until the first 4 bytes tell the HTTP/2 preface from an HTTP/1.1 request line. */
  private sniff(socket: SniffSocket): void {
    socket[kFront] = this;
    socket.on('error', ignore);
    // Before the HTTP/1.1 server owns the socket its header timeout does not run: bound the wait.
    socket.setTimeout(this.sniffMs, onSniffTimeout);
    socket.on('data', onSniffData);
  }

  /** Called once the first bytes are known; `data` goes back into the socket for the parser. */
  dispatchSniffed(socket: SniffSocket, data: Buffer): void {
    socket.off('data', onSniffData);
    socket.setTimeout(0, onSniffTimeout);
    socket.off('timeout', onSniffTimeout);
    socket.pause();
    socket.unshift(data);
    if (data.length >= 4 && data.subarray(0, 4).equals(PREFACE)) {
      this.toH2(socket);
    } else {
      this.toHttp1(socket);
      // node:http reads the socket's handle directly; the unshifted bytes are in the JS buffer
      // and flow to its 'data' listener once the socket is resumed.
      socket.resume();
    }
  }
}

function onSniffData(this: SniffSocket, chunk: Buffer): void {
  const data = this.usherSniffed === undefined ? chunk : Buffer.concat([this.usherSniffed, chunk]);
  const n = Math.min(4, data.length);
  if (data.length < 4 && data.subarray(0, n).equals(PREFACE.subarray(0, n))) {
    this.usherSniffed = data;
    return;
  }
  this.usherSniffed = undefined;
  this[kFront]!.dispatchSniffed(this, data);
}

function onSniffTimeout(this: SniffSocket): void {
  this.destroy();
}

// A listener on the session, not the server: node emits 'stream' on the next tick, and a stream
// reset in the same read as its HEADERS has already let go of its session by then.
function onSessionStream(this: GuardedSession, stream: GuardedStream): void {
  const guard = this[kGuard];
  stream[kGuard] = guard;
  if (guard !== undefined) guard.front.countStream(guard);
  stream.on('error', ignore);
  stream.on('close', onStreamClose);
}

function onStreamClose(this: GuardedStream): void {
  // Any stream that ends in RST_STREAM counts, whoever sent it: the attack is the churn itself.
  if (this.rstCode === constants.NGHTTP2_NO_ERROR || this.rstCode === undefined) return;
  const guard = this[kGuard];
  if (guard !== undefined) guard.front.countReset(guard);
}

function onRequest(owner: HandlerOwner, entry: ListenerEntry, req: Http2ServerRequest, res: Http2ServerResponse, expectContinue: boolean): void {
  // Reset before node got to emit it (Rapid Reset sends HEADERS and RST_STREAM together): no
  // work at all for a request nobody waits for.
  if (req.stream.destroyed) return;
  // The request path reads rawHeaders as HTTP/1.1 fields: shadow node's getter on this request.
  const raw = toHttp1Headers(req.rawHeaders);
  Object.defineProperty(req, 'rawHeaders', { value: raw ?? [] });
  try {
    if (raw === null) return refuse(owner, entry, req, res, 'bad_request');
    if (req.method === 'CONNECT') {
      // usher is not a forward proxy; only an RFC 8441 WebSocket may CONNECT.
      if (!prepareH2WebSocket(req, raw, owner.runtime.config.upgrade.protocols)) return refuse(owner, entry, req, res, 'method_not_allowed');
      markUpgrade(req as unknown as IncomingMessage, 'websocket');
    }
    handleRequest(owner, entry, req as unknown as IncomingMessage, res as unknown as ServerResponse, expectContinue);
  } catch {
    // handleRequest's own fallback reply can itself be refused by http2 (a connection header):
    // the stream is reset, the session and the process carry on.
    res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
}

/** A local reply before the request path runs (an Exchange, so that it is logged and counted). */
function refuse(owner: HandlerOwner, entry: ListenerEntry, req: Http2ServerRequest, res: Http2ServerResponse, reason: ReasonCode): void {
  newExchange(owner, entry.chain, req as unknown as IncomingMessage, res as unknown as ServerResponse).fail(reason);
}

function ignore(): void {}
