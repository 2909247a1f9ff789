// Traffic splits (canary, A/B): one route, several upstreams by weight. With a sticky key the
// key's hash picks the side, so a client stays on its side while the weights are unchanged, and
// a weight change only moves the keys between the old and the new boundary (the sides are
// consecutive ranges of [0, total)). Without a key: smooth weighted round robin, so the shares
// are exact over every `total` requests.
import type { StickyKey } from '../config/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { RouteRequest } from './request.js';
import { hash32 } from '../util/hash.js';

interface Side {
  readonly cluster: Cluster;
  readonly weight: number;
  /** Exclusive end of this side's range in [0, total). */
  readonly end: number;
  current: number;
}

export class Split {
  private readonly sides: Side[];
  private readonly total: number;

  constructor(
    sides: readonly { cluster: Cluster; weight: number }[],
    readonly key: StickyKey | undefined,
  ) {
    let end = 0;
    this.sides = sides.map((s) => ({ cluster: s.cluster, weight: s.weight, end: (end += s.weight), current: 0 }));
    this.total = end;
  }

  /** The sticky key of a request, or undefined when the route has none or the request lacks it. */
  keyOf(rr: RouteRequest): string | undefined {
    const k = this.key;
    if (k === undefined) return undefined;
    if (k.kind === 'client_ip') return rr.clientIp === '' ? undefined : rr.clientIp;
    return k.kind === 'cookie' ? rr.cookie(k.name) : rr.header(k.name);
  }

  /** The side for a key (deterministic). */
  sideFor(key: string): Cluster {
    const point = hash32(key) % this.total;
    for (const s of this.sides) if (point < s.end) return s.cluster;
    return this.sides[this.sides.length - 1]!.cluster;
  }

  choose(rr: RouteRequest): Cluster {
    const key = this.keyOf(rr);
    if (key !== undefined) return this.sideFor(key);
    // Smooth weighted round robin (as nginx): exact shares, sides interleaved.
    let best: Side | undefined;
    for (const s of this.sides) {
      s.current += s.weight;
      if (best === undefined || s.current > best.current) best = s;
    }
    best!.current -= this.total;
    return best!.cluster;
  }
}

export { hash32 };
