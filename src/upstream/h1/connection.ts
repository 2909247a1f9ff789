// One keep-alive connection of the native HTTP/1.1 client: it writes a request (head, then the
// body as buffers with backpressure), reads the response with the strict parser (parser.ts),
// and reports to the request's handler in undici's legacy dispatch contract (onConnect,
// onHeaders, onData, onComplete, onError, onUpgrade), which src/proxy/attempt.ts implements.
// Listeners are module functions that find their connection through a symbol on the socket or
// the body stream: nothing is allocated per request but the head string and the header array.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Clock, Timed } from '../../util/clock.js';
import { H1Error } from './errors.js';
import { BODY_CHUNKED, BODY_NONE, type BuiltHead } from './head.js';
import { ResponseParser, type ResponseSink } from './parser.js';

/** undici's legacy handler, as src/proxy/attempt.ts implements it. */
export interface H1Handler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[]): void;
  onError(err: Error): void;
  onUpgrade(statusCode: number, rawHeaders: string[], socket: Socket): void;
}

/** What a request is (the subset of undici's DispatchOptions usher passes). */
export interface H1Request {
  method: string;
  path: string;
  headers: string[];
  body: Buffer | Readable | null;
  upgrade?: string | undefined;
  /** An upstream_request filter edited the head: check it as undici would have. */
  checkHead?: boolean;
}

/** The pool a connection belongs to (pool.ts). */
export interface ConnectionOwner {
  readonly headerClock: Clock<H1Connection>;
  readonly bodyClock: Clock<H1Connection>;
  /** The keep-alive clock for an idle time of `ms`. */
  idleClock(ms: number): Clock<H1Connection>;
  /** The connection finished a response and can take another (or closes, if it cannot). */
  released(c: H1Connection): void;
  /** The connection is gone (closed, failed or handed over by an upgrade). */
  removed(c: H1Connection): void;
  /** Keep-alive idle time for this connection, given the upstream's Keep-Alive hint. */
  idleMs(hintSeconds: number): number;
}

const kConn = Symbol('usher.h1.connection');
type ConnSocket = Socket & { [kConn]?: H1Connection };
type ConnBody = Readable & { [kConn]?: H1Connection };


export class H1Connection implements ResponseSink, Timed {
  readonly socket: ConnSocket;
  private readonly owner: ConnectionOwner;
  private readonly parser: ResponseParser;
  handler: H1Handler | null = null;
  /** Connected (and the TLS handshake done). */
  ready = false;
  closed = false;
  /** Why the connection cannot be reused (Connection: close, an early response...). */
  private noReuse = false;
  private body: ConnBody | null = null;
  private bodyLength = BODY_NONE;
  private bodySent = 0;
  /** The request's bytes are all written (the head timer runs from here, as undici's). */
  private requestDone = true;
  /** The handler paused the response (onHeaders or onData returned false). */
  private paused = false;
  /** Bytes read while paused, or left over in a chunk when the handler paused. */
  private held: Buffer | null = null;
  private corked = false;
  /** The head of a streamed request, until its first body bytes. */
  private headText: string | null = null;
  private upgrading = false;
  /** Keep-alive idle time of the last response (ms). */
  idleMs = 0;
  /** The idle list of its pool (position, or -1). */
  idleIndex = -1;
  readonly abort: (err?: Error) => void;
  readonly resume: () => void;
  // Timed
  clock: Clock<H1Connection> | null = null;
  deadline = 0;
  prevTimed: Timed | null = null;
  nextTimed: Timed | null = null;

  constructor(socket: Socket, owner: ConnectionOwner) {
    this.socket = socket as ConnSocket;
    this.owner = owner;
    this.parser = new ResponseParser(this);
    this.socket[kConn] = this;
    // Two closures per connection, none per request: what the handler gets to stop or resume.
    this.abort = () => this.destroy();
    this.resume = () => this.resumeReading();
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
  }

  /**
   * Starts `req` (its head built: `head`) on this connection, connected and free; false: the
   * handler refused it (an abandoned try), and the connection is still free.
   */
  start(req: H1Request, head: BuiltHead, handler: H1Handler): boolean {
    try {
      handler.onConnect(this.abort);
    } catch (err) {
      // An abandoned try (attempt.ts ABANDONED): it fails alone, nothing is sent.
      handler.onError(err as Error);
      return false;
    }
    const body = req.body;
    this.handler = handler;
    this.paused = false;
    this.held = null;
    this.upgrading = req.upgrade !== undefined;
    this.parser.reset(req.method === 'HEAD', this.upgrading);
    const socket = this.socket;
    this.owner.headerClock.arm(this);
    if (body === null || Buffer.isBuffer(body)) {
      this.requestDone = true;
      if (body === null || body.length === 0) socket.write(head.text, 'latin1');
      else {
        // Head and body in one writev.
        socket.cork();
        socket.write(head.text, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      return true;
    }
    // A stream: the head goes with the first body bytes (or the body's end), as undici's does:
    // one write, and a body that fails before its first byte (a malformed chunk from the
    // client) sends nothing at all.
    this.requestDone = false;
    this.bodyLength = head.length;
    this.bodySent = 0;
    this.headText = head.text;
    const b = (this.body = body as ConnBody);
    b[kConn] = this;
    b.on('data', onBodyData);
    b.on('end', onBodyEnd);
    b.on('error', onBodyError);
    b.resume();
    return true;
  }

  /** Corks the socket until the end of this tick: what is written meanwhile goes in one writev. */
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(uncork, this);
  }

  uncorkNow(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  bodyData(chunk: Buffer): void {
    if (this.closed || this.requestDone) return;
    const n = chunk.length;
    if (n === 0) return;
    this.bodySent += n;
    if (this.bodyLength >= 0 && this.bodySent > this.bodyLength) {
      return this.fail(new H1Error('H1_REQUEST_LENGTH', 'the request body is longer than its Content-Length'));
    }
    this.cork();
    const socket = this.socket;
    if (this.headText !== null) {
      socket.write(this.headText, 'latin1');
      this.headText = null;
    }
    let ok: boolean;
    if (this.bodyLength === BODY_CHUNKED) {
      socket.write(`${n.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    if (!ok) this.body!.pause();
  }

  bodyEnd(): void {
    if (this.closed || this.requestDone) return;
    if (this.bodyLength >= 0 && this.bodySent !== this.bodyLength) {
      return this.fail(new H1Error('H1_REQUEST_LENGTH', 'the request body is shorter than its Content-Length'));
    }
    const head = this.headText;
    this.headText = null;
    if (this.bodyLength === BODY_CHUNKED) this.socket.write(head === null ? '0\r\n\r\n' : `${head}0\r\n\r\n`, 'latin1');
    else if (head !== null) this.socket.write(head, 'latin1');
    this.detachBody();
    this.requestDone = true;
    // The head timer runs from the end of the request (undici refreshes it there).
    if (this.handler !== null && this.parser.idle) this.owner.headerClock.arm(this);
  }

  bodyFailed(err: Error): void {
    if (this.closed || this.requestDone) return;
    this.fail(err);
  }

  drained(): void {
    const body = this.body;
    if (body !== null && !this.requestDone) body.resume();
  }

  private detachBody(): void {
    const b = this.body;
    if (b === null) return;
    this.body = null;
    b.off('data', onBodyData);
    b.off('end', onBodyEnd);
    b.off('error', onBodyError);
    b[kConn] = undefined;
  }

  // ---- reading ---------------------------------------------------------------------------------

  data(chunk: Buffer): void {
    if (this.closed) return;
    if (this.handler === null) {
      // Bytes on an idle connection: no request asked for them. Never reuse it.
      this.destroy();
      return;
    }
    if (this.paused) {
      this.held = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
      return;
    }
    this.feed(chunk);
  }

  private feed(buf: Buffer): void {
    const parser = this.parser;
    const at = parser.execute(buf, 0);
    // The handler stopped the try meanwhile (it destroyed the connection).
    if (this.closed) return;
    if (this.completed) {
      this.completed = false;
      // A complete response leaves nothing behind on a sound upstream: bytes no request asked
      // for (or a response that ends the connection) mean no reuse.
      if (at < buf.length || this.noReuse) return this.destroy();
      if (this.socket.isPaused()) this.socket.resume();
      this.owner.released(this);
      return;
    }
    if (at < 0) return this.fail(new H1Error('H1_BAD_RESPONSE', `bad response: ${parser.error}`));
    if (parser.upgraded) return this.upgraded(at < buf.length ? buf.subarray(at) : null);
    if (this.paused) {
      // Paused by the handler: the rest waits for resume(), and the socket stops reading.
      if (at < buf.length) this.held = buf.subarray(at);
      this.socket.pause();
    }
  }

  /** The response completed inside execute(): feed() releases or closes the connection after it. */
  private completed = false;

  private resumeReading(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) this.feed(held);
    if (this.closed || this.paused) return;
    if (this.endPending) {
      this.endPending = false;
      return this.ended();
    }
    if (this.handler !== null || this.idleIndex >= 0) this.socket.resume();
  }

  onInterim(status: number, headers: string[]): void {
    // A 1xx restarts the wait for the final head.
    this.owner.headerClock.arm(this);
    this.handler!.onHeaders(status, headers, this.resume);
  }

  onHead(status: number, headers: string[]): boolean {
    const handler = this.handler!;
    if (status === 101) {
      this.lastHeaders = headers;
      return false;
    }
    if (!this.parser.keepAlive || this.upgrading) this.noReuse = true;
    this.idleMs = this.owner.idleMs(this.parser.keepAliveHint);
    if (this.idleMs <= 0) this.noReuse = true;
    this.owner.bodyClock.arm(this);
    const more = handler.onHeaders(status, headers, this.resume);
    if (!more && this.handler === handler && !this.closed) this.paused = true;
    return more;
  }

  onBody(chunk: Buffer): boolean {
    const handler = this.handler;
    if (handler === null || this.closed) return false;
    this.owner.bodyClock.arm(this);
    const more = handler.onData(chunk);
    if (!more && this.handler === handler && !this.closed) this.paused = true;
    return more;
  }

  onComplete(trailers: string[]): void {
    const handler = this.handler!;
    this.handler = null;
    if (this.clock !== null) this.clock.disarm(this);
    if (!this.requestDone) {
      // An early response (before the whole request body was sent): the body's end can no
      // longer be told to the upstream, so this connection ends here. The body stream is left
      // to its owner (src/proxy/early-response.ts), not destroyed.
      this.detachBody();
      this.requestDone = true;
      this.noReuse = true;
    }
    // A paused handler that completed has nothing more to read.
    this.paused = false;
    this.completed = true;
    handler.onComplete(trailers);
  }

  /** The upstream answered 101: the socket is the handler's from here, with what came after the head. */
  private upgraded(rest: Buffer | null): void {
    const handler = this.handler!;
    const headers = this.lastHeaders;
    this.handler = null;
    this.release();
    if (rest !== null && rest.length > 0) this.socket.unshift(rest);
    handler.onUpgrade(101, headers, this.socket);
  }

  private lastHeaders: string[] = [];

  /** Can take another request now. */
  get reusable(): boolean {
    return !this.closed && !this.noReuse && this.handler === null && this.requestDone && !this.socket.destroyed && this.socket.writable && this.socket.readable;
  }

  // ---- ending ----------------------------------------------------------------------------------

  ended(): void {
    if (this.closed) return;
    if (this.handler !== null) {
      // A body read to the close completes here; anything else was cut.
      if (this.paused && this.held !== null) {
        // Deliver what is held first: the end waits for resume().
        this.noReuse = true;
        this.endPending = true;
        return;
      }
      if (this.parser.finish()) return this.destroy();
      return this.fail(new H1Error('H1_CLOSED', this.parser.idle ? 'the upstream closed the connection before answering' : 'the upstream closed the connection before the response was complete'));
    }
    this.destroy();
  }

  private endPending = false;

  /** Fails the running request with `err` and closes the connection. */
  fail(err: Error): void {
    if (this.closed) return;
    const handler = this.handler;
    this.handler = null;
    this.destroy();
    if (handler !== null) handler.onError(err);
  }

  /** A socket error: the running request fails with it (ECONNRESET, a TLS alert...). */
  socketError(err: Error): void {
    this.fail(err);
  }

  /** Closes the connection; a running request is not told (its handler stopped it, or was told). */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = null;
    this.parser.stop();
    this.detachBody();
    this.release();
    this.socket.destroy();
  }

  /** Gives the socket up: timers off, out of the pool (upgrade or close). */
  private release(): void {
    if (this.clock !== null) this.clock.disarm(this);
    this.socket[kConn] = undefined;
    this.socket.off('data', onSocketData);
    this.socket.off('end', onSocketEnd);
    this.socket.off('drain', onSocketDrain);
    this.socket.off('close', onSocketClose);
    // An error listener stays: a socket is never left without one.
    if (!this.closed) {
      this.socket.off('error', onSocketError);
      this.socket.on('error', ignore);
    }
    this.owner.removed(this);
  }

  /** The socket closed by itself (not through destroy()). */
  socketClosed(): void {
    if (this.closed) return;
    this.fail(new H1Error('H1_CLOSED', 'the upstream connection closed'));
  }

  /** timeouts.body_idle expired. */
  bodyTimedOut(): void {
    if (this.closed || this.handler === null) return;
    // A handler that paused the response (a slow client) is not an idle upstream.
    if (this.paused) return this.owner.bodyClock.arm(this);
    this.fail(new H1Error('H1_BODY_TIMEOUT', 'the upstream stalled while sending the body'));
  }

  /** timeouts.response_header expired. */
  headerTimedOut(): void {
    if (this.closed || this.handler === null) return;
    // Waiting for the head while the client's body still streams: not the upstream's delay,
    // unless the upstream stopped reading it (undici's rule, client-h1 onParserTimeout).
    if (!this.requestDone && !this.socket.writableNeedDrain) return this.owner.headerClock.arm(this);
    this.fail(new H1Error('H1_HEADERS_TIMEOUT', 'the upstream did not answer in time'));
  }

  /** Kept idle too long (keep-alive), or the pool closes. */
  idleTimedOut(): void {
    if (this.handler === null) this.destroy();
  }
}

function uncork(c: H1Connection): void {
  c.uncorkNow();
}

function onSocketData(this: ConnSocket, chunk: Buffer): void {
  this[kConn]?.data(chunk);
}

function onSocketEnd(this: ConnSocket): void {
  this[kConn]?.ended();
}

function onSocketError(this: ConnSocket, err: Error): void {
  this[kConn]?.socketError(err);
}

function onSocketClose(this: ConnSocket): void {
  this[kConn]?.socketClosed();
}

function onSocketDrain(this: ConnSocket): void {
  this[kConn]?.drained();
}

function onBodyData(this: ConnBody, chunk: Buffer): void {
  this[kConn]?.bodyData(chunk);
}

function onBodyEnd(this: ConnBody): void {
  this[kConn]?.bodyEnd();
}

function onBodyError(this: ConnBody, err: Error): void {
  this[kConn]?.bodyFailed(err);
}

function ignore(): void {}
