import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from '../../balancer.js';

/**
 * Smooth weighted round robin (nginx's algorithm, ngx_http_upstream_get_peer): each pick adds
 * every candidate's weight to its running score, takes the highest and subtracts the total.
 * With equal weights this is plain rotation; with 5:1:1 it spreads as a,a,b,a,c,a,a rather than
 * bursting a five times. Unavailable or excluded endpoints are skipped for the pick.
 */
export class RoundRobinBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly endpoints: readonly E[];
  private readonly current: Float64Array;
  private readonly uniform: boolean;
  private next = 0;

  constructor(endpoints: readonly E[], options?: BalancerOptions) {
    this.endpoints = endpoints;
    this.current = new Float64Array(endpoints.length);
    // Slow start changes weights over time: then always take the weighted path.
    this.uniform = options?.dynamicWeights !== true && endpoints.every((e) => e.weight === endpoints[0]?.weight);
  }

  pick(ctx: PickContext): E | undefined {
    return this.uniform ? this.rotate(ctx) : this.smooth(ctx);
  }

  // Equal weights: a plain rotation costs one modulo per pick.
  private rotate(ctx: PickContext): E | undefined {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const e = this.endpoints[idx]!;
      if (e.available() && !ctx.exclude?.has(e)) {
        this.next = (idx + 1) % n;
        return e;
      }
    }
    return undefined;
  }

  private smooth(ctx: PickContext): E | undefined {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      const e = this.endpoints[i]!;
      if (!e.available() || ctx.exclude?.has(e)) continue;
      this.current[i]! += e.weight;
      total += e.weight;
      if (best < 0 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best < 0) return undefined;
    this.current[best]! -= total;
    return this.endpoints[best];
  }
}

export function roundRobin<E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions): Balancer<E> {
  return new RoundRobinBalancer(endpoints, options);
}
