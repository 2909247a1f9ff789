// Multi-pattern search for @pm / @pmFromFile: an Aho-Corasick automaton over bytes, ASCII
// case-insensitive as ModSecurity's @pm is. Built once at load; a search walks the input once
// and allocates nothing. The root's transitions are a dense table (most input bytes start no
// phrase); deeper states keep theirs in a Map.

interface State {
  next: Map<number, State>;
  fail: State | undefined;
  /** The longest phrase ending here (directly or through failure links), or undefined. */
  out: string | undefined;
  depth: number;
}

const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

export class AhoCorasick {
  private readonly root: State;
  private readonly rootNext: Array<State | undefined> = new Array<State | undefined>(256).fill(undefined);
  readonly size: number;

  constructor(phrases: readonly string[]) {
    this.root = { next: new Map(), fail: undefined, out: undefined, depth: 0 };
    let size = 0;
    for (const p of phrases) {
      if (p.length === 0) continue;
      size++;
      let s = this.root;
      for (let i = 0; i < p.length; i++) {
        const c = fold(p.charCodeAt(i) & 0xff);
        let t = s.next.get(c);
        if (t === undefined) {
          t = { next: new Map(), fail: undefined, out: undefined, depth: s.depth + 1 };
          s.next.set(c, t);
        }
        s = t;
      }
      s.out ??= p;
    }
    this.size = size;
    // failure links, breadth first
    const queue: State[] = [];
    for (const [c, t] of this.root.next) {
      t.fail = this.root;
      this.rootNext[c] = t;
      queue.push(t);
    }
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q] as State;
      for (const [c, t] of s.next) {
        let f = s.fail;
        while (f !== undefined && f !== this.root && !f.next.has(c)) f = f.fail;
        const g = f?.next.get(c);
        t.fail = g !== undefined && g !== t ? g : this.root;
        t.out ??= t.fail.out;
        queue.push(t);
      }
    }
  }

  /** The first phrase found in `s` (by end position), or undefined. */
  search(s: string): string | undefined {
    const root = this.root;
    const rootNext = this.rootNext;
    let st = root;
    for (let i = 0; i < s.length; i++) {
      const c = fold(s.charCodeAt(i) & 0xff);
      for (;;) {
        if (st === root) {
          st = rootNext[c] ?? root;
          break;
        }
        const t = st.next.get(c);
        if (t !== undefined) {
          st = t;
          break;
        }
        st = st.fail as State;
      }
      if (st.out !== undefined) return st.out;
    }
    return undefined;
  }
}
