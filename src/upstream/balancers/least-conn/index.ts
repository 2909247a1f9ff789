import { usable, type Balancer, type BalancerEndpoint, type PickContext } from '../../balancer.js';

/**
 * Least connections, as nginx's least_conn: a full scan for the lowest (busy connections /
 * weight); usher sends one request per upstream connection at a time (no pipelining), so busy
 * connections are the requests in flight. Ties — most often "all idle" — are broken by smooth
 * weighted round robin among the tied endpoints, which keeps the weight proportions under
 * light load (nginx does the same).
 */
export class LeastConnBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly endpoints: readonly E[];
  private readonly current: Float64Array;

  constructor(endpoints: readonly E[]) {
    this.endpoints = endpoints;
    this.current = new Float64Array(endpoints.length);
  }

  pick(ctx: PickContext): E | undefined {
    let least = Infinity;
    for (let i = 0; i < this.endpoints.length; i++) {
      const e = this.endpoints[i]!;
      if (usable(e, ctx)) least = Math.min(least, (e.inflight ?? 0) / e.weight);
    }
    if (least === Infinity) return undefined;
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      const e = this.endpoints[i]!;
      if (!usable(e, ctx) || (e.inflight ?? 0) / e.weight !== least) continue;
      this.current[i]! += e.weight;
      total += e.weight;
      if (best < 0 || this.current[i]! > this.current[best]!) best = i;
    }
    this.current[best]! -= total;
    return this.endpoints[best];
  }
}

export function leastConn<E extends BalancerEndpoint>(endpoints: readonly E[]): Balancer<E> {
  return new LeastConnBalancer(endpoints);
}
