// The two directions of an upgrade tunnel, copied with backpressure, and what lets usher end a
// WebSocket tunnel gracefully (a reload that changed its route, src/server/drain/): each
// direction follows the RFC 6455 frame boundaries (§5.2: it reads frame heads only, payloads are
// skipped by count), so that usher can stop copying between two frames and put its own close
// frame there — never inside a frame of the application's.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

/** Follows the frames of one direction of a WebSocket: where they begin, and their opcodes. */
export class FrameCursor {
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  /** A frame head has just been read whole (opcode: 8 close, 9 ping, ...). */
  onFrame: ((opcode: number) => void) | null = null;

  /** Between two frames: a close frame may go here. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headLen === 0;
  }

  /**
   * Follows `buf` from `from`; returns where it stopped: the end of `buf`, or with `stop`, the
   * first frame boundary (`from` itself when it is one).
   */
  scan(buf: Buffer, from: number, stop: boolean): number {
    let i = from;
    while (i < buf.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      if (stop && this.headLen === 0) return i;
      this.head[this.headLen++] = buf[i++]!;
      if (this.headLen < 2) continue;
      const b1 = this.head[1]!;
      const len7 = b1 & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (this.headLen < need) continue;
      this.remaining = len7 === 126 ? this.head.readUInt16BE(2) : len7 === 127 ? Number(this.head.readBigUInt64BE(2)) : len7;
      this.headLen = 0;
      this.onFrame?.(this.head[0]! & 0x0f);
    }
    return i;
  }
}

/** A close frame (RFC 6455 §5.5.1): status code and a reason of at most 123 bytes; masked when usher sends it as the client (to the upstream). */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason).subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const head = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, payload]);
}

type PumpState = 'open' | 'stopping' | 'stopped';

/**
 * One direction: src → dst with backpressure; a FIN is passed on as a FIN. With a cursor it can
 * stop at the next frame boundary (stop()); from then on what src sends is read, followed for
 * its frames (a close frame answering usher's) and dropped.
 */
export class Pump {
  private state: PumpState = 'open';
  private stopped: (() => void) | null = null;

  constructor(
    private readonly src: Readable,
    private readonly dst: Writable,
    readonly cursor: FrameCursor | null,
  ) {
    src.on('data', (chunk: Buffer) => this.data(chunk));
    src.on('end', () => {
      if (this.state !== 'stopped') dst.end();
    });
    // A 'data' listener does not restart a stream paused explicitly: the upstream socket is,
    // while the tunnel head is in the response phase (holdUpstream).
    src.resume();
  }

  /** Usher's own bytes (a close frame), after stop(). */
  write(buf: Buffer): void {
    if (!this.dst.destroyed && !this.dst.writableEnded) this.dst.write(buf);
  }

  get isStopped(): boolean {
    return this.state === 'stopped';
  }

  /** Stops copying at the next frame boundary (at once when between frames, or without a cursor); `then` runs when it has. */
  stop(then: () => void): void {
    if (this.state !== 'open') return;
    this.stopped = then;
    if (this.cursor === null || this.cursor.atBoundary) this.halt();
    else this.state = 'stopping';
  }

  private halt(): void {
    this.state = 'stopped';
    // What comes from here on is dropped: never hold the source back for it.
    this.src.resume();
    const then = this.stopped;
    this.stopped = null;
    then?.();
  }

  private data(chunk: Buffer): void {
    const cursor = this.cursor;
    if (this.state === 'stopped') {
      cursor?.scan(chunk, 0, false);
      return;
    }
    let n = chunk.length;
    if (cursor !== null) n = cursor.scan(chunk, 0, this.state === 'stopping');
    const ok = n === 0 || this.dst.write(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (this.state === 'stopping' && cursor!.atBoundary) {
      this.halt();
      if (n < chunk.length) cursor!.scan(chunk, n, false);
      return;
    }
    if (!ok && !this.dst.destroyed) {
      this.src.pause();
      this.dst.once('drain', () => {
        if (this.state !== 'stopped') this.src.resume();
      });
    }
  }
}

/** How the tunnel ends its client side: a socket (HTTP/1.1) or an HTTP/2 stream. */
export interface ClientEnd {
  /** After what usher wrote (a close frame): FIN, or END_STREAM. */
  endClient(): void;
  destroyClient(): void;
}

/**
 * An open tunnel: both directions copied with backpressure (a FIN passed on as a FIN). Not
 * stream.pipeline(): its end-of-stream watchers put 4 more 'close' listeners on each socket per
 * direction, past the default limit of 10 with node:http's own (a MaxListenersExceededWarning on
 * every tunnel). A WebSocket tunnel follows the frames both ways (tunnel-pump.ts), so that
 * goAway() can close it as the protocol wants.
 */
export class Tunnel {
  private readonly up: Pump;
  private readonly down: Pump;
  private closing = false;
  private closeSent = false;

  constructor(
    clientIn: Readable,
    clientOut: Writable,
    private readonly upstream: Socket,
    readonly websocket: boolean,
    private readonly client: ClientEnd,
  ) {
    this.up = new Pump(clientIn, upstream, websocket ? new FrameCursor() : null);
    this.down = new Pump(upstream, clientOut, websocket ? new FrameCursor() : null);
    upstream.on('close', () => this.upstreamClosed());
  }

  private upstreamClosed(): void {
    // During a graceful close, what usher wrote to the client (its close frame) goes out first.
    if (this.closing && (this.closeSent || !this.websocket)) this.client.endClient();
    else this.client.destroyClient();
  }

  /**
   * Ends the tunnel gracefully. A WebSocket: at the next frame boundary of each direction, a
   * close frame 1001 (going away) with `reason` to the client and, masked, to the upstream; each
   * side's close frame in answer ends its connection (RFC 6455 §7.1.1: the server side closes
   * TCP once the closing handshake is done). Another protocol: a FIN both ways.
   */
  goAway(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.websocket) {
      this.client.endClient();
      this.upstream.end();
      return;
    }
    const up = this.up;
    const down = this.down;
    up.cursor!.onFrame = (op) => {
      if (op === 8 && up.isStopped && this.closeSent) this.client.endClient();
    };
    down.cursor!.onFrame = (op) => {
      if (op === 8 && down.isStopped) this.upstream.end();
    };
    down.stop(() => {
      down.write(closeFrame(1001, reason, false));
      this.closeSent = true;
    });
    up.stop(() => up.write(closeFrame(1001, reason, true)));
  }

  /** Both sides closed now (the drain policy's close_after, or shutdown). */
  cut(): void {
    this.client.destroyClient();
    this.upstream.destroy();
  }
}

