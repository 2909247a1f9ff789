// A body being stored while it streams to the client whose miss leads the fill: the requests
// collapsed onto that fill stream it as it grows, instead of waiting for its last byte. The
// memory store's copy is a list of chunks the readers share; a disk store's is the temp file
// being written, read at positions up to what the writer has flushed, through one read-only
// handle the readers share (opened before the file is renamed into place, so a rename or an
// unlink under it changes nothing for them).
//
// Each reader is a Readable of its own: it reads when its client wants more (backpressure:
// a slow client costs no memory beyond the shared copy, and a disk reader none at all), and
// waits when it has caught up with the fill. Only a body of known length grows (the leader's
// Content-Length is the readers' too). A fill that ends short of it (the upstream cut the body,
// the leading client left, a write failed) destroys every reader that has not had the whole
// body: its client's response is then short of its Content-Length — never a truncated body
// passed off as complete.
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { StreamedBody } from '../pipeline/types.js';

/** How much a disk reader reads at once. */
const READ_SIZE = 64 * 1024;

export class GrowingBody {
  /** Bytes readers may read now (appended in memory, or flushed to the file). */
  available = 0;
  /** Why the fill ended short, once it did. */
  failed: Error | undefined;
  private readonly chunks: Buffer[] | undefined;
  private handle: Promise<FileHandle> | undefined;
  /** Readers (and bodies not yet opened) holding the disk handle. */
  private users = 0;
  /** The fill is over (the fill left the store's map): no new reader comes. */
  private released = false;
  private closed = false;
  private readonly waiting = new Set<() => void>();

  private constructor(
    readonly length: number,
    chunks: Buffer[] | undefined,
  ) {
    this.chunks = chunks;
  }

  /** A memory store's fill: the chunks are appended as they pass. */
  static memory(length: number): GrowingBody {
    return new GrowingBody(length, []);
  }

  /** A disk store's fill: attach() gives the handle that reads the temp file being written. */
  static file(length: number): GrowingBody {
    return new GrowingBody(length, undefined);
  }

  attach(handle: Promise<FileHandle>): void {
    this.handle = handle;
    // A handle that could not open fails the readers when they read (and is never closed).
    handle.catch(() => {});
  }

  get complete(): boolean {
    return this.available === this.length;
  }

  /** A chunk of the body (memory). */
  append(chunk: Buffer): void {
    if (this.failed !== undefined || this.complete) return;
    if (this.available + chunk.length > this.length) return this.fail(new Error('the fill is longer than its Content-Length'));
    this.chunks!.push(chunk);
    this.available += chunk.length;
    this.wake();
  }

  /** `n` more bytes are in the file (disk). */
  advanced(n: number): void {
    if (this.failed !== undefined || this.complete) return;
    this.available += n;
    this.wake();
  }

  /** The fill ended without the whole body: readers that have not had it all are destroyed. A complete body stays readable. */
  fail(err: Error): void {
    if (this.failed !== undefined || this.complete) return;
    this.failed = err;
    this.wake();
    this.maybeClose();
  }

  /** The fill left the store: once the last reader is through, the disk handle closes. */
  release(): void {
    if (!this.complete) this.fail(new Error('the fill ended before its body did'));
    this.released = true;
    this.maybeClose();
  }

  /** A body for one collapsed request's reply. */
  reader(): StreamedBody {
    this.users++;
    let done = false;
    const unref = () => {
      if (done) return;
      done = true;
      this.users--;
      this.maybeClose();
    };
    return {
      length: this.length,
      open: () => {
        done = true; // the reader takes the reference over
        return new GrowingReader(this, () => {
          this.users--;
          this.maybeClose();
        });
      },
      close: unref,
    };
  }

  /** Runs `fn` once there is more to read, the fill failed, or it is complete. */
  onProgress(fn: () => void): void {
    this.waiting.add(fn);
  }

  offProgress(fn: () => void): void {
    this.waiting.delete(fn);
  }

  /** Memory: the chunk that holds byte `pos`, from chunk `i` on (readers go through the chunks in order). */
  chunk(i: number): Buffer | undefined {
    return this.chunks?.[i];
  }

  get inMemory(): boolean {
    return this.chunks !== undefined;
  }

  file(): Promise<FileHandle> {
    return this.handle!;
  }

  private wake(): void {
    if (this.waiting.size === 0) return;
    const w = [...this.waiting];
    this.waiting.clear();
    for (const fn of w) fn();
  }

  private maybeClose(): void {
    if (this.closed || this.users > 0 || !(this.released || this.failed !== undefined) || this.handle === undefined) return;
    this.closed = true;
    void this.handle.then((fh) => fh.close()).catch(() => {});
  }
}

/** One collapsed request's view of a growing body. */
class GrowingReader extends Readable {
  private pos = 0;
  private index = 0;
  private busy = false;
  private readonly progress = () => this.step();

  constructor(
    private readonly g: GrowingBody,
    private readonly unref: () => void,
  ) {
    super();
  }

  override _read(): void {
    this.step();
  }

  /** Pushes what there is (one chunk, or one read of the file), or waits for more. */
  private step(): void {
    if (this.busy || this.destroyed) return;
    const g = this.g;
    if (this.pos >= g.length) return void this.push(null);
    if (g.failed !== undefined) return void this.destroy(g.failed);
    if (this.pos < g.available) {
      if (g.inMemory) {
        const c = g.chunk(this.index++)!;
        this.pos += c.length;
        this.push(c);
        return;
      }
      this.busy = true;
      const n = Math.min(READ_SIZE, g.available - this.pos);
      g.file()
        .then((fh) => fh.read(Buffer.allocUnsafe(n), 0, n, this.pos))
        .then(
          ({ bytesRead, buffer }) => {
            this.busy = false;
            if (this.destroyed) return;
            if (bytesRead === 0) return void this.destroy(new Error('the cache fill file is shorter than written'));
            this.pos += bytesRead;
            this.push(buffer.subarray(0, bytesRead));
          },
          (err: Error) => {
            this.busy = false;
            this.destroy(err);
          },
        );
      return;
    }
    g.onProgress(this.progress);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.g.offProgress(this.progress);
    this.unref();
    cb(err);
  }
}
