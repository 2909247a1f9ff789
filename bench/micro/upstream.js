// The upstreams issue's hot functions: one pick of every balancer over 3 endpoints, and the
// whole cluster pick the proxy stage makes (priority groups, panic check, balancer).

import { BALANCER_FACTORIES } from '../../dist/src/upstream/balancers/index.js';
import { Cluster } from '../../dist/src/upstream/cluster.js';
import { loadConfigObject } from '../../dist/src/config/index.js';

class Ep {
  constructor(id, weight) {
    this.id = id;
    this.weight = weight;
    this.inflight = 0;
  }
  available() {
    return true;
  }
}

const eps = [new Ep('http://10.0.0.1:80', 5), new Ep('http://10.0.0.2:80', 1), new Ep('http://10.0.0.3:80', 2)];
const ctx = { attempt: 0, hashKey: '203.0.113.7' };

const r = loadConfigObject(
  {
    listeners: [{ address: 0 }],
    upstreams: { app: { servers: ['http://127.0.0.1:1', 'http://127.0.0.1:2', { url: 'http://127.0.0.1:3', backup: true }] } },
    routes: [{ upstream: 'app' }],
  },
  '<bench>',
);
const cluster = new Cluster(r.config.upstreams.app);
const clusterCtx = { attempt: 0 };

export const cases = [
  ...Object.entries(BALANCER_FACTORIES).map(([name, make]) => {
    const b = make(eps, { secret: 'bench-secret-0123456789' });
    return { name: `balancer: ${name} pick (5:1:2)`, fn: () => b.pick(ctx), iterations: 3_000_000 };
  }),
  { name: 'cluster: pick with a backup group (round robin)', fn: () => cluster.pick(clusterCtx), iterations: 3_000_000 },
];

// The cluster is built and never started: it holds no pool or timer, so nothing to close.
