// Multi-pattern search for @pm / @pmFromFile: an Aho-Corasick automaton over bytes, ASCII
// case-insensitive as ModSecurity's @pm is. Built once at load, then turned into a dense
// transition table (a DFA: every failure link followed in advance) over byte classes (the bytes
// no phrase holds share one class), so that a search is one table read per input byte and
// allocates nothing.

interface State {
  next: Map<number, State>;
  fail: State | undefined;
  /** The longest phrase ending here (directly or through failure links), or undefined. */
  out: string | undefined;
  depth: number;
  /** Index (row) in the table. */
  row: number;
  /** The tags of every phrase ending here (directly or through failure links). */
  tags: number[] | undefined;
}

const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

export class AhoCorasick {
  /** Byte → class (0: a byte no phrase holds; A-Z share a-z's). */
  private readonly classes = new Uint8Array(256);
  /** Row × classes + class → the next state's row (16 bits a cell while the rows fit). */
  private readonly table: Uint16Array | Uint32Array;
  /** States from this row on end a phrase: outs[row - acceptFrom]. */
  private readonly acceptFrom: number;
  private readonly width: number;
  private readonly outs: string[];
  /** By accepting state, as outs: the tags of the phrases that end there (mark()). */
  private readonly outTags: Array<readonly number[]>;
  readonly size: number;

  /** `tags`: a number per phrase (any), which mark() reports for every phrase found. */
  constructor(phrases: readonly string[], tags?: readonly number[]) {
    const root: State = { next: new Map(), fail: undefined, out: undefined, depth: 0, row: 0, tags: undefined };
    let size = 0;
    let width = 1;
    for (let pi = 0; pi < phrases.length; pi++) {
      const p = phrases[pi] as string;
      if (p.length === 0) continue;
      size++;
      let s = root;
      for (let i = 0; i < p.length; i++) {
        const c = fold(p.charCodeAt(i) & 0xff);
        if (this.classes[c] === 0) {
          this.classes[c] = width++;
          if (width > 256) throw new Error('unreachable: more than 255 byte classes');
        }
        let t = s.next.get(c);
        if (t === undefined) {
          t = { next: new Map(), fail: undefined, out: undefined, depth: s.depth + 1, row: 0, tags: undefined };
          s.next.set(c, t);
        }
        s = t;
      }
      s.out ??= p;
      const tag = tags?.[pi];
      if (tag !== undefined) (s.tags ??= []).push(tag);
    }
    for (let c = 0x41; c <= 0x5a; c++) this.classes[c] = this.classes[c + 0x20] as number;
    this.size = size;
    // failure links, breadth first
    const queue: State[] = [root];
    for (const t of root.next.values()) {
      t.fail = root;
      queue.push(t);
    }
    for (let q = 1; q < queue.length; q++) {
      const s = queue[q] as State;
      for (const [c, t] of s.next) {
        let f = s.fail;
        while (f !== undefined && f !== root && !f.next.has(c)) f = f.fail;
        const g = f?.next.get(c);
        t.fail = g !== undefined && g !== t ? g : root;
        t.out ??= t.fail.out;
        if (t.fail.tags !== undefined) t.tags = t.tags === undefined ? t.fail.tags : [...new Set([...t.tags, ...t.fail.tags])];
        queue.push(t);
      }
    }
    // rows: the states that end no phrase first (the root among them), then those that do
    this.width = width;
    const outs: string[] = [];
    const outTags: Array<readonly number[]> = [];
    let n = 0;
    for (const s of queue) if (s.out === undefined) s.row = n++;
    this.acceptFrom = n;
    for (const s of queue) {
      if (s.out === undefined) continue;
      s.row = n++;
      outs.push(s.out);
      outTags.push(s.tags ?? []);
    }
    this.outs = outs;
    this.outTags = outTags;
    // breadth first, a state's failure state (shallower) has its row filled before its own
    const table = n <= 0x10000 ? new Uint16Array(width * n) : new Uint32Array(width * n);
    const classOf = new Map<number, number>();
    for (let c = 0; c < 256; c++) if (this.classes[c] !== 0 && (c < 0x41 || c > 0x5a)) classOf.set(c, this.classes[c] as number);
    for (const s of queue) {
      for (const [c, k] of classOf) {
        const t = s.next.get(c);
        table[s.row * width + k] = t !== undefined ? t.row : s === root ? root.row : (table[(s.fail as State).row * width + k] as number);
      }
      // class 0 (no phrase holds it) leads back to the root, which is row 0
    }
    this.table = table;
  }

  /** The first phrase found in `s` (by end position), or undefined. */
  search(s: string): string | undefined {
    const table = this.table;
    const classes = this.classes;
    const acceptFrom = this.acceptFrom;
    const width = this.width;
    let st = 0;
    for (let i = 0; i < s.length; i++) {
      st = table[st * width + (classes[s.charCodeAt(i) & 0xff] as number)] as number;
      if (st >= acceptFrom) return this.outs[st - acceptFrom];
    }
    return undefined;
  }

  /**
   * An array of `size` with [tag] set to 1 for the tag of every phrase found anywhere in `s`, or
   * undefined when none is (most values: nothing is allocated for them).
   */
  mark(s: string, size: number): Uint8Array | undefined {
    const table = this.table;
    const classes = this.classes;
    const acceptFrom = this.acceptFrom;
    const width = this.width;
    let seen: Uint8Array | undefined;
    let st = 0;
    for (let i = 0; i < s.length; i++) {
      st = table[st * width + (classes[s.charCodeAt(i) & 0xff] as number)] as number;
      if (st >= acceptFrom) {
        seen ??= new Uint8Array(size);
        for (const tag of this.outTags[st - acceptFrom] as readonly number[]) seen[tag] = 1;
      }
    }
    return seen;
  }
}
