import type { Balancer, BalancerOptions, PickContext } from './balancer.js';
import { BALANCER_FACTORIES } from './balancers/index.js';
import type { BalancerName } from './balancers/names.js';
import type { Endpoint, PanicState } from './endpoint.js';

interface Level {
  readonly endpoints: readonly Endpoint[];
  readonly balancer: Balancer<Endpoint>;
}

/**
 * Failover and panic (after Envoy's priority levels and panic threshold, simplified): servers
 * are grouped by `priority` (backups form one last group). A request goes to the first group
 * with healthy capacity — at least `threshold` percent of it healthy (with threshold 0: any
 * healthy server). When no group qualifies, the first group that still has a healthy server
 * (or else the first group) panics: its balancer runs over all of its servers as if they were
 * healthy, because health checking that marks most of a pool down is more often wrong than the
 * pool is, and the survivors would collapse under the whole load. Connections refused by a
 * truly dead server are retried elsewhere by the proxy stage.
 */
export class PrioritySet {
  private readonly levels: readonly Level[];
  private readonly threshold: number;
  private readonly panic: PanicState = { on: false };

  constructor(endpoints: readonly Endpoint[], balance: BalancerName, threshold: number, options: BalancerOptions) {
    this.threshold = threshold;
    const groups = new Map<number, Endpoint[]>();
    for (const e of endpoints) {
      // Backups sort after every numbered group.
      const key = e.server.backup ? Number.MAX_SAFE_INTEGER : e.server.priority;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(e);
      e.panic = this.panic;
    }
    const make = BALANCER_FACTORIES[balance];
    this.levels = [...groups.keys()]
      .sort((a, b) => a - b)
      .map((k) => {
        const members = Object.freeze(groups.get(k)!);
        return { endpoints: members, balancer: make(members, options) };
      });
  }

  pick(ctx: PickContext): Endpoint | undefined {
    let fallback: Level | undefined;
    for (let i = 0; i < this.levels.length; i++) {
      const level = this.levels[i]!;
      const healthy = healthyCount(level.endpoints);
      if (healthy === 0) continue;
      if (healthy * 100 >= this.threshold * level.endpoints.length) {
        const e = level.balancer.pick(ctx);
        if (e !== undefined) return e;
        continue; // every healthy one was already tried by this request: next group
      }
      fallback ??= level;
    }
    if (this.threshold === 0) return undefined;
    const level = fallback ?? this.levels[0];
    if (level === undefined) return undefined;
    this.panic.on = true;
    try {
      return level.balancer.pick(ctx);
    } finally {
      this.panic.on = false;
    }
  }

  /** Whether any healthy endpoint is left that this request has not tried (a retry can go somewhere). */
  hasUntried(exclude: { has(e: Endpoint): boolean } | undefined): boolean {
    // In panic mode an unhealthy endpoint may be picked too.
    const anyHealth = this.threshold > 0;
    for (const level of this.levels) {
      for (const e of level.endpoints) if ((anyHealth || e.healthyNow()) && (exclude === undefined || !exclude.has(e))) return true;
    }
    return false;
  }
}

function healthyCount(endpoints: readonly Endpoint[]): number {
  let n = 0;
  for (let i = 0; i < endpoints.length; i++) if (endpoints[i]!.healthyNow()) n++;
  return n;
}
