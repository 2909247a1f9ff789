import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from '../../balancer.js';
import { weightedDraw } from '../random/index.js';

/**
 * Least request by the power of two choices (Mitzenmacher; Envoy's LEAST_REQUEST): draw two
 * distinct endpoints at random in proportion to weight and take the one with fewer requests in
 * flight relative to its weight. Two draws avoid the herd that a full "least" scan sends to one
 * freshly idle server, and keep the weights' proportions when load is even.
 */
export class LeastRequestBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly endpoints: readonly E[];
  private readonly random: () => number;

  constructor(endpoints: readonly E[], options?: BalancerOptions) {
    this.endpoints = endpoints;
    this.random = options?.random ?? Math.random;
  }

  pick(ctx: PickContext): E | undefined {
    const a = weightedDraw(this.endpoints, ctx, this.random);
    if (a === undefined) return undefined;
    const b = weightedDraw(this.endpoints, ctx, this.random, a);
    if (b === undefined) return a;
    // Ties go to the first draw, which was weighted: equal load keeps the weight proportions.
    return load(b) < load(a) ? b : a;
  }
}

function load(e: BalancerEndpoint): number {
  return (e.inflight ?? 0) / e.weight;
}

export function leastRequest<E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions): Balancer<E> {
  return new LeastRequestBalancer(endpoints, options);
}
