// A least-recently-used map bounded in bytes: a Map from key to a node of a doubly linked list,
// least recently used at its head, so "use" moves a node to the tail and eviction takes from
// the head. Hand-written: the libraries of the field (lru-cache) bound by count or by a size
// function too, but carry TTL, fetch and dispose machinery the cache does not need on its hit
// path; this is a hundred lines.

export interface Sized {
  /** Bytes this value holds (body, fields and a fixed overhead). */
  readonly size: number;
}

/** One entry: the list runs from the least recently used (head) to the most (tail). */
interface Node<V> {
  readonly key: string;
  value: V;
  prev: Node<V> | undefined;
  next: Node<V> | undefined;
}

export class ByteLru<V extends Sized> {
  private readonly map = new Map<string, Node<V>>();
  private head: Node<V> | undefined = undefined;
  private tail: Node<V> | undefined = undefined;
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

  /**
   * The value, marked as most recently used: its node moves to the tail, a few pointer writes.
   * (A Map's delete-then-set did the same with two more hash operations per hit, and left a
   * deleted slot each time that made V8 rebuild the table every few hits: the hit path's
   * largest own cost in a CPU profile of the cachehit bench.)
   */
  get(key: string): V | undefined {
    const n = this.map.get(key);
    if (n === undefined) return undefined;
    if (n !== this.tail) {
      this.unlink(n);
      this.append(n);
    }
    return n.value;
  }

  /** Without touching its recency. */
  peek(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Stores `value` (replacing any), then evicts the least recently used until within bounds. False: larger than the whole store. */
  set(key: string, value: V): boolean {
    this.delete(key);
    if (value.size > this.maxBytes) return false;
    const n: Node<V> = { key, value, prev: undefined, next: undefined };
    this.map.set(key, n);
    this.append(n);
    this.bytes += value.size;
    this.trim();
    return true;
  }

  /** The value's size changed (it was edited in place): account for it. */
  resized(key: string, before: number): void {
    const n = this.map.get(key);
    if (n === undefined) return;
    this.bytes += n.value.size - before;
    this.trim();
  }

  delete(key: string): boolean {
    const n = this.map.get(key);
    if (n === undefined) return false;
    this.map.delete(key);
    this.unlink(n);
    this.bytes -= n.value.size;
    return true;
  }

  /** Least recently used first. */
  *entries(): IterableIterator<[string, V]> {
    for (let n = this.head; n !== undefined; ) {
      // The next one is read first: the caller may delete this one.
      const next = n.next;
      yield [n.key, n.value];
      n = next;
    }
  }

  clear(): void {
    this.map.clear();
    this.head = this.tail = undefined;
    this.bytes = 0;
  }

  private append(n: Node<V>): void {
    n.prev = this.tail;
    n.next = undefined;
    if (this.tail === undefined) this.head = n;
    else this.tail.next = n;
    this.tail = n;
  }

  private unlink(n: Node<V>): void {
    if (n.prev === undefined) this.head = n.next;
    else n.prev.next = n.next;
    if (n.next === undefined) this.tail = n.prev;
    else n.next.prev = n.prev;
    n.prev = n.next = undefined;
  }

  private trim(): void {
    while (this.bytes > this.maxBytes) {
      const oldest = this.head;
      if (oldest === undefined) break;
      this.map.delete(oldest.key);
      this.unlink(oldest);
      this.bytes -= oldest.value.size;
      this.onEvict?.(oldest.key, oldest.value);
    }
  }
}
