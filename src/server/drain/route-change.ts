// Which routes a reload changed, for their long-lived connections (src/server/drain/index.ts,
// and the admin API's plan): apart from config.ts, which config/ imports for the schema and types.
import type { RouteConfig } from '../../config/types.js';
import { normalizeDrain, type DrainPolicy } from './config.js';

const DEFAULT_POLICY: DrainPolicy = Object.freeze(normalizeDrain(undefined));

/** A route's policy (a config built by hand may have none: the defaults). */
export function drainOf(route: RouteConfig): DrainPolicy {
  return route.drain ?? DEFAULT_POLICY;
}

/** What of a route decides whether its long-lived connections stay: all of it but its place in the file and its drain policy. */
const OMIT = new Set(['source', 'index', 'drain']);
const keys = new WeakMap<RouteConfig, string>();

function routeKey(r: RouteConfig): string {
  let k = keys.get(r);
  if (k === undefined) {
    k = JSON.stringify(r, (name, v: unknown) => (OMIT.has(name) ? undefined : v));
    // Normalised configs are frozen: the key cannot go stale.
    if (Object.isFrozen(r)) keys.set(r, k);
  }
  return k;
}

/** Whether a reload from `before` to `after` (same name) changes the route for its long-lived connections. */
export function routeChanged(before: RouteConfig, after: RouteConfig): boolean {
  return before !== after && routeKey(before) !== routeKey(after);
}
