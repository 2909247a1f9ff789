// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
// Load Balancer", NSDI 2016, §3.4), weighted as in Envoy: every endpoint walks its own
// permutation of a prime-sized table and claims the next free slot, in turns proportional to
// its weight. Lookups are one array read; each endpoint owns a share of the slots equal to its
// weight share (within one slot), and removing one of N endpoints moves about 1/N of the keys.

import { hash32 } from '../../../util/hash.js';

/** A prime much larger than any upstream's server count (the paper wants M ≫ 100·N). */
export const TABLE_SIZE = 65537;

export { hash32 };

/** Builds the lookup table: slot → index into `ids`. Weights are relative shares (> 0). */
export function buildTable(ids: readonly string[], weights: readonly number[], size = TABLE_SIZE): Int32Array {
  const n = ids.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return table;
  const offset = ids.map((id) => hash32(id, 0x5bd1e995) % size);
  const skip = ids.map((id) => (hash32(id, 0x1b873593) % (size - 1)) + 1);
  const next = new Array<number>(n).fill(0);
  const max = Math.max(...weights);
  const credit = new Array<number>(n).fill(0);
  let filled = 0;
  while (true) {
    for (let i = 0; i < n; i++) {
      credit[i]! += weights[i]! / max;
      while (credit[i]! >= 1) {
        credit[i]! -= 1;
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (table[c]! >= 0) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        table[c] = i;
        next[i]!++;
        if (++filled === size) return table;
      }
    }
  }
}
