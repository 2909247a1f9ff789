// A least-recently-used map bounded in bytes. A Map keeps insertion order, so "use" is delete
// then set (the entry moves to the end) and eviction takes from the front. Hand-written: the
// libraries of the field (lru-cache) bound by count or by a size function too, but carry TTL,
// fetch and dispose machinery the cache does not need on its hit path; this is 60 lines.

export interface Sized {
  /** Bytes this value holds (body, fields and a fixed overhead). */
  readonly size: number;
}

export class ByteLru<V extends Sized> {
  private readonly map = new Map<string, V>();
  private bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly onEvict?: (key: string, value: V) => void,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  /** The value, marked as most recently used. */
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** Without touching its recency. */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /** Stores `value` (replacing any), then evicts the least recently used until within bounds. False: larger than the whole store. */
  set(key: string, value: V): boolean {
    this.delete(key);
    if (value.size > this.maxBytes) return false;
    this.map.set(key, value);
    this.bytes += value.size;
    this.trim();
    return true;
  }

  /** The value's size changed (it was edited in place): account for it. */
  resized(key: string, before: number): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    this.bytes += v.size - before;
    this.trim();
  }

  delete(key: string): boolean {
    const v = this.map.get(key);
    if (v === undefined) return false;
    this.map.delete(key);
    this.bytes -= v.size;
    return true;
  }

  /** Least recently used first. */
  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  private trim(): void {
    while (this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      const v = this.map.get(oldest.value)!;
      this.map.delete(oldest.value);
      this.bytes -= v.size;
      this.onEvict?.(oldest.value, v);
    }
  }
}
