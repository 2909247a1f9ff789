import { usable, type Balancer, type BalancerEndpoint, type BalancerOptions, type PickContext } from '../../balancer.js';

/**
 * Weighted random: one uniform draw over the total weight of the usable endpoints. Weights are
 * read on every pick (slow start), so this is O(n) — fine for the tens of servers an upstream has.
 */
export class RandomBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly endpoints: readonly E[];
  private readonly random: () => number;

  constructor(endpoints: readonly E[], options?: BalancerOptions) {
    this.endpoints = endpoints;
    this.random = options?.random ?? Math.random;
  }

  pick(ctx: PickContext): E | undefined {
    return weightedDraw(this.endpoints, ctx, this.random);
  }
}

/** One weighted draw among the usable endpoints; shared with least_request (P2C). */
export function weightedDraw<E extends BalancerEndpoint>(endpoints: readonly E[], ctx: PickContext, random: () => number, skip?: E): E | undefined {
  let total = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (e !== skip && usable(e, ctx)) total += e.weight;
  }
  if (total <= 0) return undefined;
  let r = random() * total;
  let last: E | undefined;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (e === skip || !usable(e, ctx)) continue;
    last = e;
    r -= e.weight;
    if (r < 0) return e;
  }
  return last; // floating-point rounding at the top end
}

export function random<E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions): Balancer<E> {
  return new RandomBalancer(endpoints, options);
}
