// Deadlines without a Timeout object per arm. Everything armed on one clock waits the same
// duration, so deadlines expire in the order they were armed: the armed items form a list in
// that order and one timer waits for its head (what node's own timer lists do, lib/internal/
// timers.js, minus the Timeout allocation and its async-hooks bookkeeping). Used by the per-try
// timeouts (src/proxy/attempt.ts) and the native client's connections (src/upstream/h1), each
// armed on at most one clock at a time (connecting, waiting for a head, reading a body, idle);
// re-arming on every body chunk is an unlink and a link at the tail.
import { performance } from 'node:perf_hooks';

/** What a clock can hold: the list links and deadline live on the item itself. */
export interface Timed {
  clock: { disarm(t: Timed): void } | null;
  deadline: number;
  prevTimed: Timed | null;
  nextTimed: Timed | null;
}

export class Clock<T extends Timed> {
  private head: T | null = null;
  private tail: T | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly ms: number,
    private readonly expired: (item: T) => void,
    /** An unref'd clock does not keep the process alive (idle connections). */
    private readonly ref: boolean,
  ) {}

  arm(t: T): void {
    if (t.clock !== null) t.clock.disarm(t);
    t.clock = this;
    t.deadline = performance.now() + this.ms;
    t.prevTimed = this.tail;
    t.nextTimed = null;
    if (this.tail !== null) this.tail.nextTimed = t;
    else this.head = t;
    this.tail = t;
    if (this.timer === null) this.start(this.ms);
  }

  disarm(t: T): void {
    if (t.clock !== this) return;
    if (t.prevTimed !== null) t.prevTimed.nextTimed = t.nextTimed;
    else this.head = t.nextTimed as T | null;
    if (t.nextTimed !== null) t.nextTimed.prevTimed = t.prevTimed;
    else this.tail = t.prevTimed as T | null;
    t.prevTimed = t.nextTimed = null;
    t.clock = null;
    if (this.head === null && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private start(ms: number): void {
    this.timer = setTimeout(onClock, ms, this);
    if (!this.ref) this.timer.unref();
  }

  fire(): void {
    this.timer = null;
    // Timers run on the event loop's millisecond clock: a deadline within 1 ms is due.
    const now = performance.now() + 1;
    let t = this.head;
    while (t !== null && t.deadline <= now) {
      this.disarm(t);
      this.expired(t);
      t = this.head;
    }
    if (t !== null && this.timer === null) this.start(Math.max(1, Math.ceil(t.deadline - performance.now())));
  }
}

function onClock(clock: { fire(): void }): void {
  clock.fire();
}
