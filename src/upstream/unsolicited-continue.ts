// RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received prior to a
// final response, even if the client does not expect one. A user agent MAY ignore unexpected
// 1xx responses." undici 7 passes 102 and 103 to the handler, but its HTTP/1.1 parser destroys
// the connection on any 100 (node_modules/undici/lib/dispatcher/client-h1.js, Parser
// onHeadersComplete: `if (statusCode === 100) { util.destroy(socket, new SocketError('bad
// response')) }`), since it never sends Expect: 100-continue itself. An upstream that sends an
// unsolicited 100 before its final response (some servers answer 100 to every request with a
// body) then cost the client a 502 upstream_bad_response. No option turns this off, and it
// happens in the parser, before any handler hook.
//
// The workaround: once, at the first HTTP/1.1 connection undici opens (its public
// diagnostics channel `undici:client:connected` hands over the socket, whose parser is set by
// then and has read nothing yet), wrap the parser class's onHeadersComplete so that a 100 is
// skipped as an interim response: llhttp is told there is no body (return 1) and undici's own
// onMessageComplete resets the parser for the next response (it does so for every status below
// 200). The handler is not told: usher answers Expect: 100-continue to its client itself
// (src/server/handler.ts), so an upstream's 100 is never relayed. Every other status goes to
// undici's code unchanged. Pinned by test/integration/upstream-interim.test.ts, which fails if a
// new undici renames what is patched here (the patch then quietly does nothing).

import { channel } from 'node:diagnostics_channel';

interface ParserLike {
  statusCode: number;
  onHeadersComplete(statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number;
}

const connected = channel('undici:client:connected');
let patched = false;
let subscribed = false;

function onConnected(message: unknown): void {
  const socket = (message as { socket?: object }).socket;
  if (socket === undefined) return;
  // undici's kParser is Symbol('parser') (lib/core/symbols.js); HTTP/2 sockets have none.
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'parser');
  const parser = key === undefined ? undefined : (socket as Record<symbol, unknown>)[key];
  if (parser === null || typeof parser !== 'object') return;
  const proto = Object.getPrototypeOf(parser) as ParserLike;
  if (typeof proto.onHeadersComplete !== 'function') return;
  connected.unsubscribe(onConnected);
  subscribed = false;
  if (patched) return;
  patched = true;
  const original = proto.onHeadersComplete;
  proto.onHeadersComplete = function (this: ParserLike, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number {
    if (statusCode !== 100) return original.call(this, statusCode, upgrade, shouldKeepAlive);
    // onMessageComplete reads the status to see that this was an interim response, and clears it.
    this.statusCode = statusCode;
    return 1;
  };
}

/** Installs the workaround (idempotent; called when the first endpoint is built). */
export function acceptUnsolicitedContinue(): void {
  if (patched || subscribed) return;
  subscribed = true;
  connected.subscribe(onConnected);
}
