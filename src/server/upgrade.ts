// node:http's 'upgrade' event (every HTTP/1.1 request with Connection: upgrade and an Upgrade
// field) and 'connect' event. An allowed upgrade takes the ordinary request path
// (src/proxy/upgrade.ts relays the 101 and opens the tunnel); anything else, CONNECT included,
// is refused with a local reply, logged and counted.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { markUpgrade, upgradeResponse } from '../proxy/upgrade.js';
import { handleRequest, newExchange, type HandlerOwner, type ListenerEntry } from './handler.js';

export function handleUpgrade(owner: HandlerOwner, entry: ListenerEntry, tunnels: Set<Socket>, req: IncomingMessage, socket: Socket, head: Buffer): void {
  socket.on('error', ignore);
  // node:http no longer tracks this socket (closeAllConnections misses it): usher does, from the
  // upgrade request on, so that shutdown closes it whether it became a tunnel or was refused.
  tunnels.add(socket);
  socket.once('close', () => tunnels.delete(socket));
  // Bytes the client sent after the head belong to the upstream once the tunnel opens.
  if (head.length > 0) socket.unshift(head);
  const res = upgradeResponse(req, socket);
  const protocol = (req.headers.upgrade ?? '').trim();
  const allowed = owner.runtime.config.upgrade.protocols;
  // One protocol, allowed by config. A list ("websocket, foo") is refused rather than guessed at.
  if (!allowed.includes(protocol.toLowerCase()) || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
    // h2c (RFC 7540 §3.2, removed in RFC 9113) through a proxy would hand the client a raw
    // HTTP/2 connection to the upstream past routing ("h2c smuggling"): refused like any other.
    newExchange(owner, entry.chain, req, res).fail('upgrade_not_allowed', true);
    return;
  }
  markUpgrade(req, protocol);
  handleRequest(owner, entry, req, res, false);
}

/**
 * node:http's 'connect' event: an HTTP/1.1 CONNECT. usher is no forward proxy: 405, made by an
 * Exchange like every refusal (logged, counted, through the response and done phases), on a
 * response bound to the raw socket that then closes (as after a refused upgrade).
 */
export function handleConnect(owner: HandlerOwner, entry: ListenerEntry, tunnels: Set<Socket>, req: IncomingMessage, socket: Socket): void {
  socket.on('error', ignore);
  tunnels.add(socket);
  socket.once('close', () => tunnels.delete(socket));
  newExchange(owner, entry.chain, req, upgradeResponse(req, socket)).fail('method_not_allowed', true);
}

function ignore(): void {}
