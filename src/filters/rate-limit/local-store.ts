// The local store: GCRA buckets in this process, bounded in memory. A key whose TAT has passed
// holds a full bucket, which is what a missing key means too, so it can be dropped at any time:
// every SWEEP_EVERY decisions (and whenever the map reaches its bound) the expired keys go; if
// the map is still full, the least recently inserted keys go (they are the oldest TATs).
import { gcra, type Decision } from './gcra.js';

const SWEEP_EVERY = 4096;

export class LocalBuckets {
  private readonly tats = new Map<string, number>();
  private untilSweep = SWEEP_EVERY;

  constructor(
    private readonly maxKeys: number,
    private readonly clock: () => number = performance.now.bind(performance),
  ) {}

  get size(): number {
    return this.tats.size;
  }

  take(key: string, interval: number, burst: number): Decision {
    const { decision, tat } = this.evaluate(key, interval, burst);
    if (tat !== undefined) this.commit(key, tat);
    return decision;
  }

  /** The decision without taking the token: commit(key, tat) takes it (when every policy of the request allowed it). */
  evaluate(key: string, interval: number, burst: number): { decision: Decision; tat: number | undefined } {
    return gcra(this.tats.get(key), this.clock(), interval, burst);
  }

  commit(key: string, tat: number): void {
    if (--this.untilSweep <= 0 || (this.tats.size >= this.maxKeys && !this.tats.has(key))) this.sweep();
    this.tats.set(key, tat);
  }

  /** Drops expired keys; then, if still at the bound, the oldest ones. */
  sweep(now = this.clock()): void {
    this.untilSweep = SWEEP_EVERY;
    for (const [k, tat] of this.tats) if (tat <= now) this.tats.delete(k);
    if (this.tats.size < this.maxKeys) return;
    let over = this.tats.size - Math.floor(this.maxKeys * 0.9);
    for (const k of this.tats.keys()) {
      if (over-- <= 0) break;
      this.tats.delete(k);
    }
  }
}

/** Requests in flight per key; a key at zero is deleted, so the map holds only keys in flight. */
export class InflightCounts {
  private readonly counts = new Map<string, number>();

  get size(): number {
    return this.counts.size;
  }

  tryAcquire(key: string, max: number): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
