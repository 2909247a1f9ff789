// The disk store: one file per stored response under a directory bounded in bytes, the index
// (which key has which variants, their fields and freshness) in memory and rebuilt from the
// files at start. A file is the body followed by a trailer:
//
//   body | metadata (JSON) | u32 metadata length | sha256(metadata) | "USHERC01"
//
// A response is written to DIR/tmp/PID/ while it streams to the client and renamed into place
// once whole (rename is atomic: a reader sees the old file or the new one, never half of one).
// Each write has its own file name, so a reader holding an old version keeps reading it while
// a new one replaces it in the index, and removing the old never touches the new. What is read
// is checked: the file's length against the trailer's (a truncated file), the trailer's digest,
// and the body's sha256 — before the head for a body up to VERIFY_FIRST bytes (a mismatch
// removes the file and the request goes upstream), while it streams for a larger one (the last
// bytes are held back until the digest matches; a mismatch resets the client's response, which
// is then short of its Content-Length, and removes the file).
//
// A 304 that updates a stored response's fields (RFC 9111 §3.2, §4.3.4) rewrites its trailer
// the same way: the file is copied (copy_file_range or a reflink: the kernel copies, no body
// passes through JS) to DIR/tmp/PID/, the new trailer is written over the old one, and the copy is
// renamed to a new name and indexed before the old file is removed, so a restart finds the
// updated freshness and a reader sees one whole version or the other.
//
// Not cacache (npm's content-addressed cache): it has no byte bound or eviction (its index is
// an append-only log per bucket, cleaned by a separate verify pass), and its read stream
// checks the digest only after the bytes went out. The index is the same ByteLru as the
// memory store's, with file sizes as weights.
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { StreamedBody } from '../pipeline/types.js';
import { parseCacheControl } from './cache-control.js';
import type { GrowingBody } from './growing.js';
import { CacheStore, sameVariant, type DiskFile, type StoredResponse } from './store.js';

const MAGIC = Buffer.from('USHERC01');
/** u32 length + sha256 + magic. */
const TAIL = 4 + 32 + MAGIC.length;
/** Bodies up to this size are read whole and checked before the head goes out. */
export const VERIFY_FIRST = 1024 * 1024;

/** What a trailer holds: the StoredResponse without its body. */
interface Meta {
  v: 1;
  key: string;
  status: number;
  headers: string[];
  varyNames: string[];
  varyValues: (string | null)[];
  secondary: string;
  responseTime: number;
  initialAge: number;
  lifetime: number;
  control: string | null;
  targeted: boolean;
  etag: string | null;
  upstreamEtag: string | null;
  lastModified: string | null;
  date: string | null;
  tags: string[];
  length: number;
  digest: string;
}

/** A body a local reply streams from a file (src/pipeline/types.ts). */
export type FileBody = StreamedBody;

export class DiskStore extends CacheStore {
  readonly path: string;
  /** This process's temp directory: DIR/tmp/<owner>. */
  private readonly tmp: string;
  /** Resolves once the index was read from the directory (lookups miss until then). */
  private loading: Promise<void> | undefined;
  /** Files removed because they were truncated or corrupt (tests, metrics). */
  readonly diskStats = { corrupt: 0, loaded: 0, writeErrors: 0, rewrites: 0 };
  /** Responses whose trailer is being rewritten (persist()); true: another update came meanwhile. */
  private readonly rewriting = new Map<StoredResponse, boolean>();

  /**
   * `owner`: this process's temp directory's name, its pid. Workers share the directory (with an
   * index each): a worker that starts clears its own temp directory and those of processes
   * that are gone, never the files another live worker is writing.
   */
  constructor(name: string, path: string, maxSize: number, maxObjectSize: number, owner = String(process.pid)) {
    super(name, maxSize, maxObjectSize);
    this.path = path;
    this.tmp = join(path, 'tmp', owner);
  }

  override get kind(): string {
    return 'disk';
  }

  override start(): Promise<void> {
    return (this.loading ??= this.load());
  }

  protected override discard(r: StoredResponse): void {
    if (r.file !== undefined) unlink(join(this.path, r.file.path)).catch(() => {});
  }

  /** Reads the index from the files: a bad one is removed, temporary ones left by a crash too. */
  private async load(): Promise<void> {
    await this.clearTemp();
    await mkdir(this.tmp, { recursive: true });
    const found: { r: StoredResponse; key: string; mtime: number }[] = [];
    for (const shard of await readdir(this.path)) {
      if (shard === 'tmp' || !/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await readdir(join(this.path, shard)).catch(() => [] as string[])) {
        const rel = `${shard}/${name}`;
        const got = await this.readEntry(rel);
        if (got === undefined) {
          this.diskStats.corrupt++;
          await unlink(join(this.path, rel)).catch(() => {});
        } else found.push(got);
      }
    }
    // Oldest first, so that the least recently written is the first evicted.
    found.sort((a, b) => a.mtime - b.mtime);
    for (const { r, key } of found) {
      const old = this.lru.peek(key);
      const same = old?.list.find((v) => sameVariant(v, r));
      if (same !== undefined && same.responseTime > r.responseTime) {
        this.discard(r); // a crash between writing the new version and removing the old
        continue;
      }
      this.put(key, r, 16);
      this.diskStats.loaded++;
    }
    this.stats.stores = 0;
  }

  /**
   * Temp files nobody will finish: this process's (a previous one with the same pid), those of
   * processes that are gone (a worker that crashed), and loose ones (an older usher's layout).
   * Another live process's are its writes in flight: left alone.
   */
  private async clearTemp(): Promise<void> {
    const root = join(this.path, 'tmp');
    await rm(this.tmp, { recursive: true, force: true });
    const names = await readdir(root, { withFileTypes: true }).catch(() => []);
    for (const d of names) {
      const pid = /^\d+$/.test(d.name) ? Number(d.name) : NaN;
      if (d.isDirectory() && !Number.isNaN(pid) && alive(pid)) continue;
      await rm(join(root, d.name), { recursive: true, force: true });
    }
  }

  private async readEntry(rel: string): Promise<{ r: StoredResponse; key: string; mtime: number } | undefined> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(join(this.path, rel), 'r');
      const st = await fh.stat();
      if (st.size < TAIL) return undefined;
      const tail = Buffer.alloc(TAIL);
      await fh.read(tail, 0, TAIL, st.size - TAIL);
      if (!tail.subarray(TAIL - MAGIC.length).equals(MAGIC)) return undefined;
      const metaLength = tail.readUInt32BE(0);
      if (metaLength + TAIL > st.size) return undefined;
      const meta = Buffer.alloc(metaLength);
      await fh.read(meta, 0, metaLength, st.size - TAIL - metaLength);
      if (!createHash('sha256').update(meta).digest().equals(tail.subarray(4, 36))) return undefined;
      const m = JSON.parse(meta.toString('utf8')) as Meta;
      if (m.v !== 1 || m.length + metaLength + TAIL !== st.size) return undefined;
      return { r: fromMeta(m, rel, metaLength + TAIL), key: m.key, mtime: st.mtimeMs };
    } catch {
      return undefined;
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  /** A writer for one response's body, as it streams to the client. */
  writer(): BodyWriter {
    return new BodyWriter(this);
  }

  /** Where a new file goes: a shard by the key's hash, and a name of its own. */
  fileFor(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return `${h.slice(0, 2)}/${h.slice(2, 26)}-${randomBytes(6).toString('hex')}`;
  }

  tempFile(): string {
    return join(this.tmp, randomBytes(12).toString('hex'));
  }

  /**
   * The body of `r` for a reply, checked: a Buffer (read whole and verified) for a small body,
   * a FileBody (length checked; the digest as it streams) for a larger one, undefined when the
   * file is gone, truncated or corrupt (it is removed from the index then).
   */
  async body(key: string, r: StoredResponse): Promise<Buffer | FileBody | undefined> {
    const f = r.file!;
    let fh: FileHandle | undefined;
    try {
      fh = await open(join(this.path, f.path), 'r');
      const st = await fh.stat();
      if (st.size !== r.length + f.trailer) throw new Error('length');
      if (r.length <= VERIFY_FIRST) {
        const buf = Buffer.alloc(r.length);
        if (r.length > 0) await fh.read(buf, 0, r.length, 0);
        if (createHash('sha256').update(buf).digest('hex') !== f.digest) throw new Error('digest');
        await fh.close();
        return buf;
      }
      return this.fileBody(key, r, fh, f, 0, r.length - 1);
    } catch {
      await fh?.close().catch(() => {});
      // Rewritten meanwhile (persist()): the old file is gone, the new one is read instead.
      if (r.file !== f && r.file !== undefined) return this.body(key, r);
      this.corrupt(key, r, f);
      return undefined;
    }
  }

  /** A body that opens the file itself when sent (a stale response answering for a failed upstream): checked as it streams. */
  lazyBody(key: string, r: StoredResponse, start = 0, end = r.length - 1): FileBody {
    return this.fileBody(key, r, undefined, undefined, start, end);
  }

  /** `opened`: the file `fh` is open on; without `fh`, the response's file when the body is sent. */
  private fileBody(key: string, r: StoredResponse, fh: FileHandle | undefined, opened: DiskFile | undefined, start: number, end: number): FileBody {
    let sent = false;
    const whole = start === 0 && end === r.length - 1;
    return {
      length: end - start + 1,
      open: () => {
        sent = true;
        const f = opened ?? r.file!;
        const src = fh === undefined ? createReadStream(join(this.path, f.path), { start, end }) : fh.createReadStream({ start, end, autoClose: true });
        // A range is checked by the file's length only; a whole body by its digest too.
        const check = new Verify(whole ? f.digest : undefined, end - start + 1, () => this.corrupt(key, r, f));
        // Either end's failure or close (the client gone) takes the other with it: the file is closed.
        return pipeline(src, check, () => {});
      },
      close: () => {
        if (!sent) void fh?.close().catch(() => {});
      },
    };
  }

  /**
   * A file that failed a check: out of the index, off the disk. `f`: the file that failed — a
   * file the response no longer has (rewritten meanwhile, persist()) leaves the response be.
   */
  corrupt(key: string, r: StoredResponse, f: DiskFile | undefined = r.file): void {
    if (f !== r.file) return;
    this.diskStats.corrupt++;
    this.remove(key, r);
  }

  /** `r` is in the index under `key` now. */
  private indexed(key: string, r: StoredResponse): boolean {
    return this.lru.peek(key)?.list.includes(r) === true;
  }

  /**
   * A 304 updated `r`'s fields and freshness in memory: its file's trailer is rewritten to match
   * (a restart finds them), in the background. One rewrite per response at a time; updates that
   * come meanwhile are written by one more rewrite once it is through.
   */
  persist(key: string, r: StoredResponse): void {
    if (r.file === undefined) return;
    if (this.rewriting.has(r)) return void this.rewriting.set(r, true);
    this.rewriting.set(r, false);
    void this.rewrite(key, r).then(
      () => {
        const again = this.rewriting.get(r) === true;
        this.rewriting.delete(r);
        if (again && this.indexed(key, r)) this.persist(key, r);
      },
      () => void this.rewriting.delete(r),
    );
  }

  /** persist()'s work: copy, new trailer, rename to a new name, index, remove the old file. */
  private async rewrite(key: string, r: StoredResponse): Promise<void> {
    const old = r.file!;
    const trailer = trailerOf(key, r);
    const temp = this.tempFile();
    let fh: FileHandle | undefined;
    try {
      // COPYFILE_FICLONE: a reflink where the file system has them, else the kernel's copy.
      await copyFile(join(this.path, old.path), temp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      fh = await open(temp, 'r+');
      // The copy is the file as indexed (one truncated or replaced meanwhile is not rewritten: a reader finds it so).
      if ((await fh.stat()).size !== r.length + old.trailer) throw new Error('length');
      await fh.write(trailer, 0, trailer.length, r.length);
      await fh.truncate(r.length + trailer.length);
      await fh.close();
      fh = undefined;
      // Evicted, purged or replaced while copying: nothing to index.
      if (r.file !== old || !this.indexed(key, r)) throw new Error('gone');
      const file: DiskFile = { path: this.fileFor(key), digest: old.digest, trailer: trailer.length };
      const dest = join(this.path, file.path);
      await mkdir(join(dest, '..'), { recursive: true });
      await rename(temp, dest);
      if (r.file !== old || !this.indexed(key, r)) {
        await unlink(dest).catch(() => {});
        return;
      }
      r.file = file;
      r.size = r.length + file.trailer;
      this.touched(key);
      this.diskStats.rewrites++;
      // Readers that opened the old file keep it open; new ones get the new file (body()).
      await unlink(join(this.path, old.path)).catch(() => {});
    } catch (err) {
      await fh?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      if ((err as Error).message !== 'gone') this.diskStats.writeErrors++;
    }
  }

  /** A written temp file becomes `r`'s file: the trailer appended, renamed into place, indexed. */
  async commit(key: string, r: StoredResponse, w: BodyWriter, maxVariants: number): Promise<boolean> {
    const file = r.file!;
    const trailer = trailerOf(key, r);
    file.trailer = trailer.length;
    r.size = r.length + file.trailer;
    if (r.size > this.maxSize) {
      w.abandon();
      return false;
    }
    try {
      await w.finish(trailer);
      const dest = join(this.path, file.path);
      await mkdir(join(dest, '..'), { recursive: true });
      await rename(w.temp, dest);
    } catch {
      this.diskStats.writeErrors++;
      w.abandon();
      return false;
    }
    this.put(key, r, maxVariants);
    return true;
  }

  /** Bytes of files in the directory (tests: the bound holds on disk, not only in the index). */
  async bytesOnDisk(): Promise<number> {
    let n = 0;
    for (const shard of await readdir(this.path)) {
      if (shard === 'tmp') continue;
      for (const name of await readdir(join(this.path, shard)).catch(() => [] as string[])) n += (await stat(join(this.path, shard, name)).catch(() => ({ size: 0 }))).size;
    }
    return n;
  }
}

/** Writes a body to a temp file as it passes; the digest is computed on the way. */
export class BodyWriter {
  readonly temp: string;
  private readonly out: WriteStream;
  private readonly hash = createHash('sha256');
  length = 0;
  failed = false;
  private waiting: (() => void) | undefined;
  /** The collapsed readers' copy (growing.ts): told of each chunk once it is in the file. */
  private growing: GrowingBody | undefined;
  /** A read-only handle on the temp file for those readers, opened before it can be renamed. */
  private reading: Promise<FileHandle> | undefined;

  constructor(store: DiskStore) {
    this.temp = store.tempFile();
    this.out = createWriteStream(this.temp, { flags: 'wx' });
    this.out.on('error', () => {
      this.failed = true;
      store.diskStats.writeErrors++;
      this.growing?.fail(new Error('the cache file could not be written'));
      this.drained();
    });
    this.out.on('drain', () => this.drained());
  }

  private drained(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** Writes a chunk; false: `drained` is called when the file can take more (or failed: the body still goes to the client). */
  write(chunk: Buffer, drained: () => void): boolean {
    this.length += chunk.length;
    this.hash.update(chunk);
    if (this.failed) return true;
    const g = this.growing;
    const ok = g === undefined ? this.out.write(chunk) : this.out.write(chunk, (err) => (err == null ? g.advanced(chunk.length) : undefined));
    if (ok) return true;
    this.waiting = drained;
    return false;
  }

  /**
   * The file's bytes are read by collapsed requests as they are written (growing.ts): `g` is
   * told of each chunk once it is in the file, and gets a read-only handle on it.
   */
  share(g: GrowingBody): Promise<FileHandle> {
    this.growing = g;
    return (this.reading ??= new Promise<void>((resolve, reject) => {
      if (!this.out.pending) return resolve();
      this.out.once('ready', resolve);
      this.out.once('error', reject);
    }).then(() => open(this.temp, 'r')));
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  /** Appends the trailer and closes the file. */
  async finish(trailer: Buffer): Promise<void> {
    // The readers' handle is open before the file is renamed (or fails as they do).
    await this.reading?.catch(() => {});
    return new Promise((resolve, reject) => {
      if (this.failed) return reject(new Error('write failed'));
      this.out.once('error', reject);
      this.out.end(trailer, () => (this.failed ? reject(new Error('write failed')) : resolve()));
    });
  }

  /** Drops the temp file (too large, the client gone, a write error). */
  abandon(): void {
    this.failed = true;
    this.growing?.fail(new Error('the cache fill was abandoned'));
    this.drained();
    this.out.destroy();
    this.out.once('close', () => void unlink(this.temp).catch(() => {}));
    if (this.out.closed) void unlink(this.temp).catch(() => {});
  }
}

/** Passes a file's bytes, holding back the last chunk until the digest (or the length) is right. */
class Verify extends Transform {
  private readonly hash: ReturnType<typeof createHash> | undefined;
  private held: Buffer | undefined;
  private bytes = 0;

  constructor(
    private readonly digest: string | undefined,
    private readonly length: number,
    private readonly onBad: () => void,
  ) {
    super();
    this.hash = digest === undefined ? undefined : createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    const out = this.held;
    this.held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.length || (this.hash !== undefined && this.hash.digest('hex') !== this.digest)) {
      this.onBad();
      return cb(new Error('cache file corrupt'));
    }
    cb(null, this.held);
  }
}

/** Whether process `pid` exists (EPERM: it does, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What follows the body in `r`'s file: metadata, its length, its digest and the magic. */
function trailerOf(key: string, r: StoredResponse): Buffer {
  const meta = Buffer.from(JSON.stringify(toMeta(key, r)), 'utf8');
  const tail = Buffer.alloc(TAIL);
  tail.writeUInt32BE(meta.length, 0);
  createHash('sha256').update(meta).digest().copy(tail, 4);
  MAGIC.copy(tail, 36);
  return Buffer.concat([meta, tail]);
}

function toMeta(key: string, r: StoredResponse): Meta {
  return {
    v: 1,
    key,
    status: r.status,
    headers: r.headers,
    varyNames: [...r.varyNames],
    varyValues: r.varyValues.map((v) => v ?? null),
    secondary: r.secondary,
    responseTime: r.responseTime,
    initialAge: r.initialAge,
    lifetime: r.lifetime,
    control: r.control ?? null,
    targeted: r.targeted,
    etag: r.etag ?? null,
    upstreamEtag: r.upstreamEtag ?? null,
    lastModified: r.lastModified ?? null,
    date: r.date ?? null,
    tags: [...r.tags],
    length: r.length,
    digest: r.file!.digest,
  };
}

const EMPTY = Buffer.alloc(0);

function fromMeta(m: Meta, path: string, trailer: number): StoredResponse {
  const file: DiskFile = { path, digest: m.digest, trailer };
  return {
    status: m.status,
    headers: m.headers,
    body: EMPTY,
    length: m.length,
    file,
    varyNames: m.varyNames,
    varyValues: m.varyValues.map((v) => v ?? undefined),
    secondary: m.secondary,
    responseTime: m.responseTime,
    initialAge: m.initialAge,
    lifetime: m.lifetime,
    control: m.control ?? undefined,
    targeted: m.targeted === true,
    directives: parseCacheControl(m.control ?? undefined),
    etag: m.etag ?? undefined,
    upstreamEtag: m.upstreamEtag ?? undefined,
    lastModified: m.lastModified ?? undefined,
    date: m.date ?? undefined,
    tags: m.tags,
    size: m.length + trailer,
  };
}
