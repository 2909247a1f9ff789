// An upstream may answer before it has read the whole request body (401, 413...: RFC 9112 §9.3,
// RFC 9110 §15.5.14). The answer is relayed whole; the rest of the client's upload is then read
// and dropped, not forwarded, and the connection is closed after the response (RFC 9112 §9.6,
// as nginx does), since the body's end can no longer be found without reading it all.
//
// Closing is where the answer can get lost: a socket closed with unread bytes in its receive
// buffer makes the kernel send a reset, and a client that gets the reset before it read the
// answer sees ECONNRESET instead (RFC 9112 §9.6, "lingering close"). node:http destroys the
// socket as soon as the FIN of a "Connection: close" response is out (destroySoon in
// resOnFinish), and undici destroys the request body stream (the downstream request) as soon
// as the response is complete, which destroyed the socket too on a counted (BodyLimit) body.
// So usher: detaches the request from its socket (as undici itself does before destroying an
// IncomingMessage, lib/core/util.js destroy()), lets node's parser drop the rest of the body
// (IncomingMessage._dump, node's own way for bodies nobody reads), sends its FIN after the
// response, keeps reading until the client's FIN, and cuts it only after LINGER_MS.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long the connection may linger for the client's FIN (nginx: lingering_time 30s, lingering_timeout 5s). */
const LINGER_MS = 5000;

/**
 * Whether the response being started comes while the request body is still arriving: then
 * the connection cannot be kept (the caller sends "Connection: close").
 */
export function bodyStillArriving(req: IncomingMessage, streaming: boolean): boolean {
  return streaming && !req.complete;
}

/**
 * The upstream's response is complete and the request body is not: called just before the
 * response is ended. HTTP/1.x only (on HTTP/2 node resets the stream, which ends an upload
 * without touching the connection, RFC 9113 §8.1).
 */
export function lingerAfterEarlyResponse(req: IncomingMessage, res: ServerResponse, socket: Socket): void {
  if (req.httpVersionMajor !== 1) return;
  // The body-idle timer is the socket's: off before the request lets go of it.
  req.setTimeout(0);
  (req as { socket: Socket | null }).socket = null;
  (req as unknown as { _dump?: () => void })._dump?.();
  res.once('finish', () => lingerClose(socket));
}

function lingerClose(socket: Socket): void {
  if (socket.destroyed) return;
  // node:http's resOnFinish ran first (it listens from the response's creation): for a
  // "Connection: close" response it ended the socket and queued destroy() for its 'finish'.
  socket.removeListener('finish', socket.destroy);
  if (!socket.writableEnded) socket.end();
  // Read (node's parser drops the body) until the client's FIN; then the socket closes itself.
  socket.resume();
  const timer = setTimeout(destroy, LINGER_MS, socket);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function destroy(socket: Socket): void {
  socket.destroy();
}
