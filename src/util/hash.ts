// The one string hash of usher's hashing decisions (traffic-split stickiness, the Maglev
// balancer): stable across processes and versions, since clients are pinned by it.

/** 32-bit FNV-1a over the string's UTF-16 code units, then murmur3's finaliser to spread the bits. Unsigned. */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
