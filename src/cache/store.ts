// A cache store: stored responses by primary key (scheme, host, path and query, plus the
// route's key parts), each key holding its variants (RFC 9111 §4.1: one per set of values of
// the fields its Vary names). Bounded in bytes, least recently used evicted first (lru.ts).
// It also holds the in-flight fills that concurrent misses collapse onto, and the keys whose
// last response was not storable (so that their requests go upstream at once, never queued
// behind one another: Varnish's hit-for-miss).
import type { Directives } from './cache-control.js';
import type { GrowingBody } from './growing.js';
import type { Logger } from 'pino';
import type { L2Config } from '../filters/cache/config.js';
import { ByteLru } from './lru.js';

/** Where a disk store keeps one response: the file's name and what a read checks. */
export interface DiskFile {
  readonly path: string;
  /** sha256 of the body, hex. */
  readonly digest: string;
  /** The trailer's length (metadata after the body). */
  trailer: number;
}

export interface StoredResponse {
  status: number;
  /** The fields sent with a hit (Age and Cache-Status are added per hit); flat pairs. */
  headers: string[];
  /** The body in memory; empty for a response whose body is in a file (`file`). */
  body: Buffer;
  /** The body's length (body.length, or the file's body part). */
  length: number;
  /** The disk store's file for this response (disk.ts), undefined in memory. */
  file: DiskFile | undefined;
  /** Lower-case names of the request fields the response varies on, and their normalised values when stored. */
  varyNames: readonly string[];
  varyValues: readonly (string | undefined)[];
  /** The route's extra key parts (configured headers and cookies), "" when none. */
  secondary: string;
  /** Seconds (wall clock): when the response head arrived, and §4.2.3's corrected_initial_age. */
  responseTime: number;
  initialAge: number;
  /** Freshness lifetime, seconds. */
  lifetime: number;
  directives: Readonly<Directives>;
  /** The directives' source (Cache-Control, or the targeted field that took precedence), kept for the disk store. */
  control: string | undefined;
  /** `control` came from a targeted field (RFC 9213): Expires is ignored. */
  targeted: boolean;
  /** Purge tags (the configured tag field's values). */
  tags: readonly string[];
  /**
   * The fields as a hit sends them (no Content-Length or Transfer-Encoding), checked writable
   * once, on the first hit; null: one is not (such a hit is checked per reply); undefined: not yet
   * made (reset when a 304 updates the fields).
   */
  wire?: string[] | null;
  /**
   * The head of a plain hit (no conditional, range, collapse or detail) for one whole second of
   * age: `wire` with Age and Cache-Status, copied per hit (a hit's fields change once a second).
   * Reset with `wire`.
   */
  hitHead?: { readonly age: number; readonly ttl: number; readonly headers: readonly string[] } | undefined;
  /** The ETag as sent downstream (compression may have weakened it) and the upstream's own, for revalidation. */
  etag: string | undefined;
  upstreamEtag: string | undefined;
  lastModified: string | undefined;
  /** The Date field as stored. */
  date: string | undefined;
  size: number;
}

/** The variants of one primary key. */
export interface Variants {
  list: StoredResponse[];
  size: number;
}

/** Bytes counted per stored response beyond its body and fields (object, arrays, map slots). */
const OVERHEAD = 256;

export function sizeOf(r: Pick<StoredResponse, 'headers' | 'body' | 'length' | 'file'>): number {
  // A disk store counts the file's bytes (body and trailer) against its bound.
  if (r.file !== undefined) return r.length + r.file.trailer;
  let n = OVERHEAD + r.body.length;
  for (const f of r.headers) n += f.length;
  return n;
}

/** What to purge: exactly one of an exact key (a URL as keyOf makes it), a key prefix, a tag. */
export interface Purge {
  readonly url?: string;
  readonly prefix?: string;
  readonly tag?: string;
}

/** Who waits for a fill, and how long it may. */
export interface Fill {
  readonly waiters: (() => void)[];
  /**
   * Once the leader's response is known storable and its length known: the response being
   * stored and its body as it grows, which the requests collapsed onto the fill stream from
   * (growing.ts) instead of waiting for the last byte.
   */
  growing: { readonly r: StoredResponse; readonly body: GrowingBody } | undefined;
}

/** How long a key whose last response was not storable sends its requests straight upstream. */
const PASS_MS = 10_000;
const MAX_PASS_KEYS = 10_000;

export class CacheStore {
  readonly name: string;
  readonly maxObjectSize: number;
  readonly maxSize: number;
  protected readonly lru: ByteLru<Variants>;
  private readonly fills = new Map<string, Fill>();
  private readonly pass = new Map<string, number>();
  /** For tests and metrics (stale: answers with a stale response, counted in hits too). */
  readonly stats = { hits: 0, misses: 0, stale: 0, stores: 0, evictions: 0 };
  /** Stored responses (variants) now. */
  objects = 0;
  /** The shared second level (a memory store's `l2`), undefined without one: then nothing on any path looks at Redis. */
  l2: SecondLevel | undefined;

  constructor(name: string, maxSize: number, maxObjectSize: number) {
    this.name = name;
    this.maxObjectSize = maxObjectSize;
    this.maxSize = maxSize;
    this.lru = new ByteLru<Variants>(maxSize, (_key, v) => {
      this.stats.evictions++;
      for (const r of v.list) this.dropped(r);
    });
  }

  /** 'memory' or 'disk'. */
  get kind(): string {
    return 'memory';
  }

  /** Opens what the store needs (the disk store reads its directory); resolves when it serves. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /** A stored response left the store (evicted, replaced, invalidated). */
  private dropped(r: StoredResponse): void {
    this.objects--;
    this.discard(r);
  }

  /** What a response leaving the store leaves behind: the disk store removes its file. */
  protected discard(_r: StoredResponse): void {}

  /** Every primary key, for purges by prefix or tag. */
  entries(): IterableIterator<[string, Variants]> {
    return this.lru.entries();
  }

  get bytes(): number {
    return this.lru.usedBytes;
  }

  get keys(): number {
    return this.lru.size;
  }

  get(key: string): Variants | undefined {
    return this.lru.get(key);
  }

  /** Stores `r` under `key`, replacing the variant with the same Vary values (at most `maxVariants` per key). */
  put(key: string, r: StoredResponse, maxVariants: number): void {
    const old = this.lru.peek(key);
    const list: StoredResponse[] = [r];
    if (old !== undefined) {
      for (const v of old.list) {
        if (v === r) continue;
        if (sameVariant(v, r) || list.length >= maxVariants) this.dropped(v);
        else list.push(v);
      }
      this.lru.delete(key);
    }
    let size = 0;
    for (const v of list) size += v.size;
    this.objects++;
    if (!this.lru.set(key, { list, size })) for (const v of list) this.dropped(v);
    this.pass.delete(key);
    this.stats.stores++;
  }

  /** A stored response was edited in place (a 304 updated its fields). */
  touched(key: string): void {
    const v = this.lru.peek(key);
    if (v === undefined) return;
    const before = v.size;
    let size = 0;
    for (const r of v.list) size += r.size;
    v.size = size;
    this.lru.resized(key, before);
  }

  /** §4.4: removes every variant of `key`. */
  invalidate(key: string): boolean {
    const v = this.lru.peek(key);
    if (v === undefined) return false;
    this.lru.delete(key);
    for (const r of v.list) this.dropped(r);
    return true;
  }

  /** Removes one variant (a disk file found corrupt). */
  remove(key: string, r: StoredResponse): void {
    const v = this.lru.peek(key);
    if (v === undefined) return;
    const i = v.list.indexOf(r);
    if (i < 0) return;
    if (v.list.length === 1) return void this.invalidate(key);
    v.list.splice(i, 1);
    const before = v.size;
    v.size -= r.size;
    this.lru.resized(key, before);
    this.dropped(r);
  }

  /** Purges by exact key, by key prefix or by tag: how many stored responses left. */
  purge(p: Purge): number {
    if (p.url !== undefined) {
      const v = this.lru.peek(p.url);
      return v !== undefined && this.invalidate(p.url) ? v.list.length : 0;
    }
    let n = 0;
    const keys: string[] = [];
    for (const [key, v] of this.lru.entries()) {
      if (p.prefix !== undefined) {
        if (key.startsWith(p.prefix)) {
          keys.push(key);
          n += v.list.length;
        }
      } else if (p.tag !== undefined && v.list.some((r) => r.tags.includes(p.tag!))) keys.push(key);
    }
    for (const key of keys) {
      if (p.prefix !== undefined) this.invalidate(key);
      else {
        for (const r of this.lru.peek(key)!.list.filter((x) => x.tags.includes(p.tag!))) {
          this.remove(key, r);
          n++;
        }
      }
    }
    return n;
  }

  clear(): void {
    for (const [, v] of this.lru.entries()) for (const r of v.list) this.dropped(r);
    this.lru.clear();
    this.pass.clear();
  }

  // Collapsing

  /** The fill in flight for `key`, if any. */
  fill(key: string): Fill | undefined {
    return this.fills.get(key);
  }

  /** Starts a fill: the caller goes upstream, later requests for `key` wait for it. */
  lead(key: string): Fill {
    const f: Fill = { waiters: [], growing: undefined };
    this.fills.set(key, f);
    return f;
  }

  /** Ends a fill: every waiter looks again (a hit, or upstream on its own). */
  release(key: string, f: Fill): void {
    if (this.fills.get(key) === f) this.fills.delete(key);
    f.growing?.body.release();
    this.wake(f);
  }

  /** The fill's response is growing (Fill.growing): its waiters look again and follow it. */
  wake(f: Fill): void {
    const w = f.waiters.splice(0);
    for (const wake of w) wake();
  }

  /** The key's last response was not storable: its requests go upstream without collapsing for a while. */
  markPass(key: string, now: number): void {
    if (this.pass.size >= MAX_PASS_KEYS) {
      const oldest = this.pass.keys().next();
      if (oldest.done !== true) this.pass.delete(oldest.value);
    }
    this.pass.set(key, now + PASS_MS);
  }

  passing(key: string, now: number): boolean {
    const until = this.pass.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.pass.delete(key);
    return false;
  }
}

export function sameVariant(a: StoredResponse, b: StoredResponse): boolean {
  if (a.secondary !== b.secondary) return false;
  if (a.varyNames.length !== b.varyNames.length) return false;
  for (let i = 0; i < a.varyNames.length; i++) if (a.varyNames[i] !== b.varyNames[i] || a.varyValues[i] !== b.varyValues[i]) return false;
  return true;
}

/** The memory store: bodies in this process, lost on restart. */
export class MemoryStore extends CacheStore {}

/**
 * What the store's users ask of its shared second level: cache/l2.ts's L2 implements it
 * (declared here so that the store, which l2.ts builds on, does not import it).
 */
export interface SecondLevel {
  readonly config: L2Config;
  readonly stats: { hits: number; misses: number; errors: number; writes: number };
  readonly reachable: boolean;
  readonly subscribed: boolean;
  readonly started: boolean;
  start(log: Logger | undefined): void;
  get(key: string): Promise<StoredResponse | undefined>;
  write(key: string, r: StoredResponse, now: number, staleIfError: number): void;
  purge(p: Purge): Promise<void>;
  invalidate(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
