// Idle keep-alive connections (HTTP/1.x) close after timeouts.keep_alive, timed here rather
// than by node:http. node times them when server.keepAliveTimeout is set, and then also writes
// "Keep-Alive: timeout=N" into every keep-alive response (_http_outgoing.js _storeHeader): an
// HTTP/1.0-era field (RFC 9112 Appendix C.2.2) that HTTP/1.1 does not define and HTTP linters
// flag, with no option to leave it out. So the listener runs with keepAliveTimeout 0 (no field,
// no node timer) and this does what node's resOnFinish did: once the last response on a
// connection is finished and the connection stays open, the socket's inactivity timer is set to
// keep_alive; the next request clears it. When it fires, node:http (socketOnTimeout, no request
// or response on the socket) destroys the connection, as before.
//
// Requests in flight are counted per socket: with pipelining, a response may finish while the
// next request on the connection is already waiting on its upstream — that one is not idle.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kInFlight = Symbol('usher.keepAlive.inFlight');
type CountedSocket = Socket & { [kInFlight]?: number };

export class KeepAliveIdle {
  /** ms; changes on reload. */
  timeout: number;
  /** One listener function per listener (not per response), bound to this. */
  private readonly onFinish: (this: ServerResponse) => void;

  constructor(timeout: number) {
    this.timeout = timeout;
    this.onFinish = finishListener(this);
  }

  /** Every HTTP/1.x request that gets a response on this connection (not upgrades). */
  request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as CountedSocket;
    const n = socket[kInFlight] ?? 0;
    // The idle period is over (usher's own timers — body_idle — may set the timer again).
    if (n === 0) socket.setTimeout(0);
    socket[kInFlight] = n + 1;
    res.on('finish', this.onFinish);
  }

  finished(res: ServerResponse): void {
    // node:http has detached the response from its socket by now (resOnFinish runs first); the
    // request keeps it, unless early-response.ts took it away (that connection is closing).
    const socket = res.req.socket as CountedSocket | null;
    if (socket === null) return;
    const n = (socket[kInFlight] ?? 1) - 1;
    socket[kInFlight] = n;
    // A "Connection: close" response: node:http is closing the connection already.
    if (n > 0 || !res.shouldKeepAlive || socket.destroyed) return;
    if (this.timeout > 0) socket.setTimeout(this.timeout);
  }
}

function finishListener(idle: KeepAliveIdle): (this: ServerResponse) => void {
  return function (this: ServerResponse) {
    idle.finished(this);
  };
}
