import type { BalancerFactory } from '../balancer.js';
import { hash } from './hash/index.js';
import { leastConn } from './least-conn/index.js';
import { leastRequest } from './least-request/index.js';
import { random } from './random/index.js';
import { roundRobin } from './round-robin/index.js';
import { sticky } from './sticky/index.js';

/** Every balancer by its `balance:` name. The config's enum (schema.ts BALANCERS) lists these. */
export const BALANCER_FACTORIES: Readonly<Record<string, BalancerFactory>> = Object.freeze({
  round_robin: roundRobin,
  least_request: leastRequest,
  least_conn: leastConn,
  random,
  hash,
  sticky,
});
