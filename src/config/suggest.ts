// "Did you mean …?" by edit distance, for unknown keys, enum values and upstream names.

/**
 * Edit distance with adjacent transpositions (optimal string alignment), so "tsl" is one edit
 * from "tls". Only distances up to `max` matter to a did-you-mean, so only the diagonal band
 * |i - j| <= max of the table is computed, in three rolling rows: O(min(n, m)·max) time and
 * O(m) memory. Anything farther returns max + 1. Fuzzing found why it must be bounded: with the
 * full n·m table a 1 MiB unknown key took 29 s to answer (issue #11).
 */
export function editDistance(a: string, b: string, max = Math.max(a.length, b.length)): number {
  if (a === b) return 0;
  const n = a.length;
  const m = b.length;
  if (Math.abs(n - m) > max) return max + 1;
  const far = max + 1;
  let prev2 = new Uint32Array(m + 1).fill(far);
  let prev = new Uint32Array(m + 1).fill(far);
  let cur = new Uint32Array(m + 1).fill(far);
  for (let j = 0; j <= Math.min(m, max); j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    const lo = Math.max(1, i - max);
    const hi = Math.min(m, i + max);
    // The cells just outside the band read as "too far"; column 0 is i deletions.
    cur[lo - 1] = lo === 1 ? Math.min(i, far) : far;
    if (hi < m) cur[hi + 1] = far;
    let rowMin = cur[lo - 1] as number;
    for (let j = lo; j <= hi; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
        v = Math.min(v, (prev2[j - 2] as number) + 1);
      }
      v = Math.min(v, far);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    // Every path to the corner passes through this row: if all of it is too far, so is the end.
    if (rowMin > max) return far;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m] as number;
}

/**
 * The closest candidate, if it is close enough to be a likely typo: at most 1 edit for words of
 * up to 3 letters, 2 up to 6, 3 beyond. Case and "-" vs "_" do not count as edits. A candidate
 * whose length differs by more than that limit cannot be close, and is skipped before any table.
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, '_');
  const want = norm(input);
  const limit = want.length <= 3 ? 1 : want.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - want.length) > limit) continue;
    const d = editDistance(want, norm(c), limit);
    if (d < bestDistance || (d === bestDistance && best !== undefined && c < best)) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit && best !== input ? best : undefined;
}

/** `did you mean "x"?` or undefined. */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const c = closest(input, candidates);
  return c === undefined ? undefined : `did you mean ${JSON.stringify(c)}?`;
}
