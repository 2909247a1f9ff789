import { usable, type Balancer, type BalancerEndpoint, type BalancerOptions, type PickContext } from '../../balancer.js';
import { weightedDraw } from '../random/index.js';
import { buildTable, hash32, TABLE_SIZE } from './maglev.js';

/**
 * Consistent hashing on ctx.hashKey over a Maglev table built once over every endpoint of the
 * snapshot. A key whose slot belongs to an unavailable (or already tried) endpoint walks on to
 * the next slots, whose owners are interleaved by the permutations: its keys spread over the
 * others, and the keys of every other endpoint stay where they were. Requests without a key are
 * spread by weight. Weights are the configured ones (slow start does not reshuffle keys).
 */
export class HashBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly endpoints: readonly E[];
  private readonly table: Int32Array;
  private readonly random: () => number;

  constructor(endpoints: readonly E[], options?: BalancerOptions) {
    this.endpoints = endpoints;
    this.random = options?.random ?? Math.random;
    this.table = buildTable(
      endpoints.map((e) => e.id),
      endpoints.map((e) => e.baseWeight ?? e.weight),
    );
  }

  pick(ctx: PickContext): E | undefined {
    if (ctx.hashKey === undefined) return weightedDraw(this.endpoints, ctx, this.random);
    const slot = hash32(ctx.hashKey) % TABLE_SIZE;
    const first = this.endpoints[this.table[slot]!];
    if (first !== undefined && usable(first, ctx)) return first;
    if (!this.endpoints.some((e) => usable(e, ctx))) return undefined;
    for (let k = 1; k < TABLE_SIZE; k++) {
      const e = this.endpoints[this.table[(slot + k) % TABLE_SIZE]!]!;
      if (usable(e, ctx)) return e;
    }
    return undefined;
  }
}

export function hash<E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions): Balancer<E> {
  return new HashBalancer(endpoints, options);
}
