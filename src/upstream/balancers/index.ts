import type { BalancerFactory } from '../balancer.js';
import { hash } from './hash/index.js';
import { leastConn } from './least-conn/index.js';
import { leastRequest } from './least-request/index.js';
import { random } from './random/index.js';
import { roundRobin } from './round-robin/index.js';
import { sticky } from './sticky/index.js';

import type { BalancerName } from './names.js';

/** Every balancer by its `balance:` name (names.ts, which the config's enum reads too). */
export const BALANCER_FACTORIES: Readonly<Record<BalancerName, BalancerFactory>> = Object.freeze({
  round_robin: roundRobin,
  least_request: leastRequest,
  least_conn: leastConn,
  random,
  hash,
  sticky,
});
