// The downstream request body on its way upstream: streamed as it arrives (counted against
// limits.body when it has no Content-Length), or read whole first — to replay it on a retry
// (retry.buffer_body) or for a request_body filter — with the body-idle timer and observers
// (a mirror's copy) that see the bytes without pausing or replacing them.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import type { BodyObserver } from '../pipeline/types.js';
import { BodyLimit } from './body-limit.js';
import { usherHoldsBody } from './body-idle.js';

/** What the body tells the exchange that owns it. */
export interface BodyOwner {
  /** A body read whole has all arrived (`buffer` is set). */
  bodyBuffered(): void;
  /** The downstream body has all arrived (streamed or buffered). */
  bodyEnded(): void;
  /** No byte arrived for timeouts.body_idle. */
  bodyIdle(): void;
  /** The body grew past its bound. */
  bodyTooLarge(): void;
}

const kBody = Symbol('usher.body');
type BodyReq = IncomingMessage & { [kBody]?: RequestBody };

export class RequestBody {
  readonly owner: BodyOwner;
  private readonly req: BodyReq;
  /** What undici reads when the body streams; null when it is buffered. */
  stream: Readable | null = null;
  /** The whole body, once read (buffered mode). */
  buffer: Buffer | null = null;
  private chunks: Buffer[] | null = null;
  private size = 0;
  private max = Infinity;
  readonly idleMs: number;
  /** Kept: early-response.ts detaches the request from its socket. */
  readonly socket: Socket;

  constructor(owner: BodyOwner, req: IncomingMessage, idleMs: number) {
    this.owner = owner;
    this.req = req as BodyReq;
    this.idleMs = idleMs;
    this.socket = req.socket;
    this.req[kBody] = this;
    // On the request, not the socket: on HTTP/2 the socket is the whole session's.
    req.setTimeout(idleMs);
    req.on('timeout', onIdle);
    req.on('end', onEnd);
  }

  /** Streams the body upstream as it arrives; `limit` bounds a body without Content-Length. */
  streamIt(limit: number | null, lengthKnown: boolean): void {
    if (limit !== null && !lengthKnown) {
      const counted = new BodyLimit(limit, () => this.owner.bodyTooLarge());
      pipeline(this.req, counted, ignore);
      this.stream = counted;
    } else {
      this.stream = this.req;
    }
  }

  /** Reads the body whole (at most `max` bytes, else bodyTooLarge), then calls bodyBuffered. */
  bufferIt(max: number): void {
    this.chunks = [];
    this.max = max;
    this.req.on('data', onData);
    // An observer (a mirror) may have paused the stream so that it would not flow before undici
    // read it; read whole, nothing else will resume it.
    this.req.resume();
  }

  /** The body can be sent again: nothing streams it. */
  get replayable(): boolean {
    return this.stream === null;
  }

  /** The whole body has arrived from the client. */
  get complete(): boolean {
    return this.req.complete;
  }

  chunk(c: Buffer): void {
    if (this.chunks === null) return;
    this.size += c.length;
    if (this.size > this.max) {
      this.chunks = null;
      this.req.off('data', onData);
      this.owner.bodyTooLarge();
      return;
    }
    this.chunks.push(c);
  }

  ended(): void {
    // Whole: the idle timer is over.
    this.req.setTimeout(0);
    const chunks = this.chunks;
    if (chunks !== null) {
      this.chunks = null;
      this.buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.owner.bodyBuffered();
    }
    this.owner.bodyEnded();
  }

  /**
   * Lets `observer` see the bytes as the proxy stage reads them. A 'data' listener on a stream
   * nobody reads yet would start it flowing before undici listens, so such a stream is paused
   * first: undici resumes it once it attached its own listener.
   */
  observe(observer: BodyObserver): void {
    const req = this.req;
    if (req.readableFlowing === null) req.pause();
    let done = false;
    const onTapData = (chunk: Buffer): void => observer.data(chunk);
    const finish = (complete: boolean): void => {
      if (done) return;
      done = true;
      req.off('data', onTapData);
      req.off('end', onTapEnd);
      req.off('close', onTapClose);
      observer.end(complete);
    };
    // node:http dumps a body nobody read once the response is sent (the upstream failed before
    // reading it): it removes every 'data' listener, this one too, and the stream still ends.
    // What passed is then only a part of the body.
    const onTapEnd = (): void => finish(req.listenerCount('data', onTapData) > 0);
    // Closed before the body ended: the client went away; nothing whole passed.
    const onTapClose = (): void => finish(false);
    req.on('data', onTapData);
    req.once('end', onTapEnd);
    req.once('close', onTapClose);
  }
}

function onIdle(this: BodyReq): void {
  const body = this[kBody]!;
  // Blocked by backpressure (a slow upstream) is not idle: body-idle.ts.
  if (usherHoldsBody(this, body.socket, body.idleMs, idleAgain)) return;
  body.owner.bodyIdle();
}

function idleAgain(req: IncomingMessage): void {
  onIdle.call(req as BodyReq);
}

function onEnd(this: BodyReq): void {
  this[kBody]!.ended();
}

function onData(this: BodyReq, chunk: Buffer): void {
  this[kBody]!.chunk(chunk);
}

function ignore(): void {
  // Errors on the counted body reach undici (which reads it) and the downstream 'close' handler.
}
