// `split:` — a traffic split (canary, A/B) as the route's upstream_peer filter: it chooses which
// upstream takes the request (src/router/split.ts); that upstream's balancer then picks the server.
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { Filter, RequestContext } from '../../pipeline/types.js';
import { Split } from '../../router/split.js';
import type { Cluster } from '../../upstream/cluster.js';

export class SplitFilter implements Filter {
  readonly name = 'split';
  constructor(readonly split: Split, private readonly weights: string) {}

  upstreamPeer(ctx: RequestContext): Cluster | undefined {
    const rr = ctx.request!;
    // Without a sticky key the side is per request (round robin state): explain cannot say which.
    if (ctx.explaining) {
      const key = this.split.keyOf(rr);
      return key === undefined ? undefined : this.split.sideFor(key);
    }
    return this.split.choose(rr);
  }

  explain(): string {
    return `split (${this.weights}${this.split.key === undefined ? '' : `, sticky on ${this.split.key.kind}${'name' in this.split.key ? ` ${this.split.key.name}` : ''}`})`;
  }
}

export const split: RouteFilterDefinition = {
  name: 'split',
  create: (rc: RouteConfig, deps) => {
    if (rc.split === undefined) return undefined;
    const s = new Split(rc.split.map((x) => ({ cluster: deps.clusters.get(x.upstream)!, weight: x.weight })), rc.sticky_key);
    return new SplitFilter(s, rc.split.map((x) => `${x.upstream} ${x.weight}`).join(' / '));
  },
};
