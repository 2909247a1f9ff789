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

//
// A timer can also fire late, after the event loop was busy: timers run before the poll phase
// that would read what the client sent meanwhile. So on HTTP/1.1 a timer that finds usher
// waiting looks once more after that phase (setImmediate) and counts only if no byte arrived on
// the socket since. (On HTTP/2 the socket is the whole session's: its bytes say nothing of
// this stream, and the stream's state is taken as it is.)

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kLooked = Symbol('usher.bodyIdle.looked');
type LookedRequest = IncomingMessage & { [kLooked]?: number };

/**
 * The timer fired: true when it does not count (usher holds the body up: the timer is armed
 * again; or it looks again after the I/O phase: `again(req)`, which calls this once more).
 */
export function usherHoldsBody(req: IncomingMessage, socket: Socket, idle: number, again: (req: IncomingMessage) => void): boolean {
  // Destroyed: the client left while usher looked again, or the request was detached from its
  // socket (early-response.ts).
  if (req.destroyed) return true;
  // Complete: nothing more to wait for.
  if (req.complete) {
    req.setTimeout(0);
    return true;
  }
  const r = req as LookedRequest;
  const looked = r[kLooked];
  r[kLooked] = undefined;
  if (req.readableFlowing !== true || req.readableLength > 0 || (looked !== undefined && socket.bytesRead !== looked)) {
    req.setTimeout(idle);
    return true;
  }
  if (looked !== undefined || req.httpVersionMajor !== 1) return false;
  r[kLooked] = socket.bytesRead;
  setImmediate(again, req);
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
