// The body transforms of the cache filter (index.ts): copying a response into a memory store or
// a disk store's file as it streams to the client, and sending a stored body in place of an
// upstream's 304 (or its error, for stale-if-error).
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { BodyWriter, FileBody } from '../../cache/disk.js';
import type { GrowingBody } from '../../cache/growing.js';
import type { BodyLength } from '../../pipeline/types.js';

/**
 * Copies the bytes into a buffer as they pass; more than `max` bytes and the copy is dropped.
 * `growing`: the requests collapsed onto this fill read the chunks as they pass (growing.ts).
 */
export class Tee extends Transform implements BodyLength {
  readonly outputLength = 'input';
  private chunks: Buffer[] = [];
  private bytes = 0;
  private over = false;
  /**
   * `expected`: the body's Content-Length (-1: unknown). The copy is done with its last byte, not
   * at the upstream's end: a client that has the whole body may close before that end reaches
   * _flush, and the copy must not be lost with it (nor the collapsed readers cut).
   */
  constructor(
    private readonly max: number,
    private readonly done: (body: Buffer | null) => void,
    private readonly growing?: GrowingBody,
    private readonly expected = -1,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.over) {
      this.bytes += chunk.length;
      if (this.bytes > this.max) {
        this.over = true;
        this.chunks = [];
        this.growing?.fail(new Error('the fill is over max_object_size'));
        this.done(null);
      } else {
        this.chunks.push(chunk);
        this.growing?.append(chunk);
        if (this.bytes === this.expected) {
          this.over = true;
          this.done(Buffer.concat(this.chunks, this.bytes));
        }
      }
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.over) {
      this.over = true;
      this.done(Buffer.concat(this.chunks, this.bytes));
    }
    cb();
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    // The client left or the upstream cut the body: the collapsed readers are cut too (a whole copy stays readable).
    this.growing?.fail(new Error('the fill was cut short'));
    cb(err);
  }
}

/** Writes the bytes to a disk store's temp file as they pass (disk.ts); more than `max` and the file is dropped. */
export class DiskTee extends Transform implements BodyLength {
  readonly outputLength = 'input';
  private over = false;
  /** `expected`: the body's Content-Length (-1: unknown); the file is done with its last byte, as Tee's copy. */
  constructor(
    private readonly w: BodyWriter,
    private readonly max: number,
    private readonly done: (w: BodyWriter | null) => void,
    private readonly expected = -1,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.over) return cb(null, chunk);
    if (this.w.length + chunk.length > this.max) {
      this.over = true;
      this.w.abandon();
      this.done(null);
      return cb(null, chunk);
    }
    // The client gets the chunk at once; the next one waits while the file's buffer is full.
    this.push(chunk);
    if (this.w.length + chunk.length === this.expected) {
      // The last byte: the file is finished (its queued writes first) and stored now; nothing waits for a drain.
      this.w.write(chunk, () => {});
      this.over = true;
      this.done(this.w);
      return cb();
    }
    if (this.w.write(chunk, () => cb())) cb();
  }
  override _flush(cb: TransformCallback): void {
    if (!this.over) {
      this.over = true;
      this.done(this.w);
    }
    cb();
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    // The client left or the upstream cut the body: nothing is stored.
    if (!this.over) {
      this.over = true;
      this.w.abandon();
    }
    cb(err);
  }
}

/** The stored body (from memory or its file) instead of the (empty) body of the upstream's 304 or the upstream's error. */
export class StoredBody extends Transform implements BodyLength {
  private source: Readable | undefined;
  readonly outputLength: number;
  constructor(private readonly body: Buffer | FileBody) {
    super();
    this.outputLength = body.length;
  }
  override _transform(_chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (Buffer.isBuffer(this.body)) return cb(null, this.body);
    const src = (this.source = this.body.open());
    src.on('data', (c: Buffer) => {
      if (!this.push(c)) src.pause();
    });
    src.once('end', () => cb());
    src.once('error', (err) => cb(err));
  }
  override _read(n: number): void {
    super._read(n);
    this.source?.resume();
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.source?.destroy();
    cb(err);
  }
}
