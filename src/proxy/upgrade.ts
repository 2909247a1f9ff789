// HTTP/1.1 connection upgrades (RFC 9110 §7.8), i.e. WebSockets (RFC 6455), on the proxy side
// (the listener's side is src/server/upgrade.ts). An upgrade request takes the ordinary request path — routing, filters, forwarding headers, cluster.pick, retries
// on connect failure, the access log and the inflight count — with a ServerResponse bound to the
// raw socket. undici sends it with `upgrade:`; only when the upstream answers 101 does usher
// answer 101 and join the two sockets into a byte tunnel (so WebSocket frames, pings and close
// codes pass as they are). Any other answer (a refusal: 400, 403...) is relayed as a normal
// response and the connection is closed.

import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ResponseHead } from '../pipeline/types.js';
import type { TunnelHost } from './tunnel.js';
import { filterResponseHeaders } from './headers.js';
import { h2TunnelHead, openH2Tunnel } from './upgrade-h2.js';
import { Tunnel } from './tunnel-pump.js';

const kUpgrade = Symbol('usher.upgrade');
const kTunnelled = Symbol('usher.tunnelled');
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: string };
type TunnelSocket = Socket & { [kTunnelled]?: boolean };

/** The protocol an upgrade request asks for, for undici's `upgrade` option; undefined otherwise. */
export function upgradeOf(req: IncomingMessage): string | undefined {
  return (req as UpgradeRequest)[kUpgrade];
}

/** Marks a request as an upgrade to `protocol` (an HTTP/2 extended CONNECT, see upgrade-h2.ts). */
export function markUpgrade(req: IncomingMessage, protocol: string): void {
  (req as UpgradeRequest)[kUpgrade] = protocol;
}

/**
 * The ServerResponse for an upgrade request, bound to its raw socket (node:http no longer owns
 * it). A reply that is not a 101 ends the connection (see onReplyFinish).
 */
export function upgradeResponse(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  // No keep-alive after an upgrade request: the connection is a tunnel or it is closed.
  res.shouldKeepAlive = false;
  res.on('finish', onReplyFinish);
  return res;
}

/**
 * The head that opens the tunnel, from the upstream's 101: a 101 with Connection and Upgrade
 * (200 on an HTTP/2 extended CONNECT, upgrade-h2.ts). It passes the response phase (Exchange)
 * before openTunnel writes it.
 */
export function tunnelHead(ex: TunnelHost, statusCode: number, rawHeaders: readonly (Buffer | string)[]): ResponseHead {
  const fwd = ex.runtime.forward;
  if (ex.req.httpVersionMajor === 2) return h2TunnelHead(rawHeaders.map((h) => (typeof h === 'string' ? Buffer.from(h, 'latin1') : h)), fwd, ex.requestId);
  const headers: string[] = [];
  filterResponseHeaders(rawHeaders, fwd, headers);
  // Connection and Upgrade are hop-by-hop and were filtered; the 101 needs them (RFC 9110 §15.2.2).
  headers.push('connection', 'upgrade', 'upgrade', upgradeOf(ex.req) ?? 'websocket');
  if (fwd.via !== null) headers.push('via', fwd.via);
  headers.push(fwd.requestIdHeader, ex.requestId);
  return { status: statusCode, headers, local: false };
}

/**
 * Until the tunnel head is written (the response phase may await): the upstream's bytes wait in
 * its socket, and a client that leaves takes the upstream connection with it.
 */
export function holdUpstream(ex: TunnelHost, upstream: Socket): void {
  upstream.on('error', ignore);
  upstream.pause();
  ex.res.once('close', () => upstream.destroy());
}

/**
 * Writes ex.response (after the response phase) and joins the sockets; returns the tunnel's
 * handle (a reload's drain policy ends it through that). Throws, having written nothing, when
 * node refuses a field of the head.
 */
export function openTunnel(ex: TunnelHost, upstream: Socket): Tunnel | null {
  const head = ex.response!;
  if (ex.req.httpVersionMajor === 2) return openH2Tunnel(ex, head, upstream, ex.runtime.config.upgrade.idle_timeout);
  const client = ex.socket as TunnelSocket;
  if (client.destroyed) {
    upstream.destroy();
    return null;
  }
  ex.res.writeHead(head.status, head.headers);
  client[kTunnelled] = true;
  // A 101 has no body: end() writes the head now; the socket is the tunnel's from here.
  ex.res.end();
  const tunnel = new Tunnel(client, client, upstream, upgradeOf(ex.req) === 'websocket', {
    endClient: () => client.end(),
    destroyClient: () => client.destroy(),
  });
  // A close on either side (an error destroys the socket, hence closes it) tears down both.
  client.on('close', () => upstream.destroy());
  // Activity in either direction is activity on the client socket (reads and writes).
  const idle = ex.runtime.config.upgrade.idle_timeout;
  if (idle > 0) {
    client.setTimeout(idle, () => {
      ex.reason = 'tunnel_idle_timeout';
      client.destroy();
    });
  }
  return tunnel;
}

/** Closes every open tunnel (after the graceful-shutdown period). */
export function closeTunnels(tunnels: Set<Socket>): void {
  for (const s of tunnels) s.destroy();
  tunnels.clear();
}

/** How long a refused upgrade's connection may linger for the client's FIN (nginx: lingering_timeout 5s). */
const LINGER_MS = 5000;

/**
 * A reply that is not a 101 ends the connection: no keep-alive after a refused upgrade. Bytes
 * the client sent after the request (never forwarded) are read and dropped, so that the FIN is
 * seen and the close does not turn into a reset that could discard the reply; a client that
 * never closes its side is cut after LINGER_MS (the socket has no node:http timeout any more).
 */
function onReplyFinish(this: ServerResponse): void {
  const socket = this.socket as TunnelSocket | null;
  if (socket === null || socket[kTunnelled] === true) return;
  socket.resume();
  socket.end();
  socket.setTimeout(LINGER_MS, () => socket.destroy());
}

function ignore(): void {}
