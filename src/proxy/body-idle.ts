// timeouts.body_idle is meant for a client that stops sending its request body (408). It runs
// on the connection's inactivity timer (req.setTimeout: the socket's on HTTP/1, the stream's on
// HTTP/2), which also sees no activity when the client is blocked, not idle: an upstream that
// reads slowly makes undici pause the request stream (backpressure), node stops reading the
// socket, and the client waits on usher. So when the timer fires, it counts only if usher was
// waiting for the client: the request stream flowing and nothing of it left unread. Otherwise
// the timer is armed again for another body_idle (measured: a 64 MB upload to an upstream
// that pauses 4 × body_idle got a 408 before, test/integration/body-idle.test.ts).
//
// A body already received whole (req.complete) but not yet read by undici is not the client's
// gap either. node:http then emits no 'timeout' on the request (socketOnTimeout skips complete
// requests) and, with no other listener, destroys the socket; the listener on the response
// (HTTP/1.1 only) turns the timer off instead: there is nothing more to wait for.

import type { IncomingMessage, ServerResponse } from 'node:http';

/** The timer fired: true when usher, not the client, holds the body up (the timer is re-armed). */
export function usherHoldsBody(req: IncomingMessage, idle: number): boolean {
  // Destroyed: the client left, or the request was detached from its socket (early-response.ts).
  if (req.destroyed) return true;
  if (req.complete) {
    req.setTimeout(0);
    return true;
  }
  if (req.readableFlowing === true && req.readableLength === 0) return false;
  req.setTimeout(idle);
  return true;
}

/** HTTP/1.1: keeps node:http from destroying the socket when the timer fires on a complete body. */
export function watchCompleteBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMajor === 1) res.on('timeout', onResponseTimeout);
}

function onResponseTimeout(this: ServerResponse): void {
  const req = this.req;
  // An incomplete request got the same event: RequestBody's idle listener answers it.
  if (req.complete && !req.destroyed) req.setTimeout(0);
}
