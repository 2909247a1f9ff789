// The filter registry: how a feature becomes part of the request path. A definition builds the
// filter a route (or a listener) needs from its config, once per config; `compile.ts` copies the
// filters into the route's phase arrays by the hooks they implement. Built-in definitions are
// listed in src/filters/index.ts; a program embedding usher can add its own (UsherOptions.filters).
import type { ListenerConfig, RouteConfig } from '../config/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { RateLimits } from '../filters/rate-limit/registry.js';
import type { CacheStores } from '../cache/registry.js';
import type { WafRuntime } from '../filters/waf/runtime.js';
import type { Filter } from './types.js';

/** What a route filter may be built from besides its route's config. */
export interface RouteFilterDeps {
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** The config's rate-limit policies (src/filters/rate-limit/registry.ts). */
  readonly rateLimits?: RateLimits;
  /** The config's cache stores (src/cache/registry.ts). */
  readonly caches?: CacheStores;
  /** The config's WAF (the loaded CRS), when it has a `waf:` section. */
  readonly waf?: WafRuntime;
}

export interface RouteFilterDefinition {
  readonly name: string;
  /** The filter for this route, or undefined when the route does not use the feature. */
  create(route: RouteConfig, deps: RouteFilterDeps): Filter | undefined;
}

/** A listener-wide filter: its early_request hook runs before routing, on every request. */
export interface ListenerFilterDefinition<Deps = unknown> {
  readonly name: string;
  create(listener: ListenerConfig, deps: Deps): Filter | undefined;
}
