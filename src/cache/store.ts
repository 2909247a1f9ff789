// A cache store: stored responses by primary key (scheme, host, path and query, plus the
// route's key parts), each key holding its variants (RFC 9111 §4.1: one per set of values of
// the fields its Vary names). Bounded in bytes, least recently used evicted first (lru.ts).
// It also holds the in-flight fills that concurrent misses collapse onto, and the keys whose
// last response was not storable (so that their requests go upstream at once, never queued
// behind one another: Varnish's hit-for-miss).
import type { Directives } from './cache-control.js';
import { ByteLru } from './lru.js';

export interface StoredResponse {
  status: number;
  /** The fields sent with a hit (Age and Cache-Status are added per hit); flat pairs. */
  headers: string[];
  body: Buffer;
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

export function sizeOf(r: Pick<StoredResponse, 'headers' | 'body'>): number {
  let n = OVERHEAD + r.body.length;
  for (const f of r.headers) n += f.length;
  return n;
}

/** Who waits for a fill, and how long it may. */
export interface Fill {
  readonly waiters: (() => void)[];
}

/** How long a key whose last response was not storable sends its requests straight upstream. */
const PASS_MS = 10_000;
const MAX_PASS_KEYS = 10_000;

export class MemoryStore {
  readonly name: string;
  readonly maxObjectSize: number;
  readonly maxSize: number;
  private readonly lru: ByteLru<Variants>;
  private readonly fills = new Map<string, Fill>();
  private readonly pass = new Map<string, number>();
  /** For tests and, later, metrics. */
  readonly stats = { hits: 0, misses: 0, stores: 0, evictions: 0 };

  constructor(name: string, maxSize: number, maxObjectSize: number) {
    this.name = name;
    this.maxObjectSize = maxObjectSize;
    this.maxSize = maxSize;
    this.lru = new ByteLru<Variants>(maxSize, () => void this.stats.evictions++);
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
    const list = old === undefined ? [] : old.list.filter((v) => !sameVariant(v, r));
    list.unshift(r);
    if (list.length > maxVariants) list.length = maxVariants;
    let size = 0;
    for (const v of list) size += v.size;
    this.lru.set(key, { list, size });
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
    return this.lru.delete(key);
  }

  clear(): void {
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
    const f: Fill = { waiters: [] };
    this.fills.set(key, f);
    return f;
  }

  /** Ends a fill: every waiter looks again (a hit, or upstream on its own). */
  release(key: string, f: Fill): void {
    if (this.fills.get(key) === f) this.fills.delete(key);
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

function sameVariant(a: StoredResponse, b: StoredResponse): boolean {
  if (a.secondary !== b.secondary) return false;
  if (a.varyNames.length !== b.varyNames.length) return false;
  for (let i = 0; i < a.varyNames.length; i++) if (a.varyNames[i] !== b.varyNames[i] || a.varyValues[i] !== b.varyValues[i]) return false;
  return true;
}
