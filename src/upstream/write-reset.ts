// An upstream that answers early and closes without reading the rest of the request body
// (node:http does so for "Connection: close" responses) makes its kernel reset the connection:
// usher's next body write then fails (EPIPE, ECONNRESET), node destroys the socket on that
// error, and the answer the upstream sent first — already in usher's receive buffer — is never
// parsed: the client got a 502 upstream_reset instead of the upstream's 413 (or 401).
//
// So on every HTTP/1.1 connection undici opens (reached through its public diagnostics channel
// `undici:client:connected`), a write that fails with a reset is not turned into an error at
// once: later writes are dropped, and the read side is left to report — the answer, then the
// end of the connection, which undici takes as the end of a "Connection: close" response or
// else as the failure it was (lib/dispatcher/client-h1.js onHttpSocketEnd / onHttpSocketError).
// Should the read side say nothing, the socket is destroyed with the write error after
// RESET_GRACE_MS, as before. What is dropped is the rest of a body the upstream refused anyway.

import { channel } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

const RESET_GRACE_MS = 1000;

type WriteCallback = (err?: Error | null) => void;
interface Writes {
  _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void;
  _writev?: ((chunks: unknown[], cb: WriteCallback) => void) | null;
}

const connected = channel('undici:client:connected');
let subscribed = false;

/** Installs the behaviour for every later upstream connection (idempotent). */
export function readAfterWriteReset(): void {
  if (subscribed) return;
  subscribed = true;
  connected.subscribe(onConnected);
}

function onConnected(message: unknown): void {
  const socket = (message as { socket?: Socket }).socket;
  // HTTP/2 sessions (ALPN h2, h2c) have their own framing and error handling.
  if (socket === undefined || (socket as { alpnProtocol?: string | false }).alpnProtocol === 'h2') return;
  if (!Object.getOwnPropertySymbols(socket).some((s) => s.description === 'parser')) return;
  guardWrites(socket);
}

/** The behaviour on one socket (the native client's connections, src/upstream/h1/pool.ts, call it directly). */
export function guardWrites(socket: Socket): void {
  const s = socket as unknown as Writes;
  const write = s._write;
  const writev = s._writev;
  let reset = false;
  // node's Writable passes the same callback to every write of a stream (its state.onwrite):
  // its guard is made once, not per write.
  let lastCb: WriteCallback | null = null;
  let lastGuarded: WriteCallback = ignoreWrite;
  const guarded = (cb: WriteCallback): WriteCallback => {
    if (cb === lastCb) return lastGuarded;
    lastCb = cb;
    return (lastGuarded = (err) => {
      const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
      if (code !== 'EPIPE' && code !== 'ECONNRESET') return cb(err);
      if (!reset) {
        reset = true;
        setTimeout(destroyWith, RESET_GRACE_MS, socket, err as Error).unref();
      }
      cb();
    });
  };
  s._write = function (chunk, encoding, cb) {
    if (reset) return cb();
    write.call(this, chunk, encoding, guarded(cb));
  };
  if (typeof writev === 'function') {
    s._writev = function (chunks, cb) {
      if (reset) return cb();
      writev.call(this, chunks, guarded(cb));
    };
  }
}

function ignoreWrite(): void {
  // Placeholder until the first write's guard is made.
}

function destroyWith(socket: Socket, err: Error): void {
  socket.destroy(err);
}
