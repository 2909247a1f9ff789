import { trustedProxyList } from '../config/address.js';
import type { UsherConfig } from '../config/types.js';
import { ROUTE_FILTERS } from '../filters/index.js';
import { globalFilter, type RateLimitFilter } from '../filters/rate-limit/index.js';
import { CacheStores } from '../cache/registry.js';
import { WafRuntime } from '../filters/waf/runtime.js';
import { NO_RATE_LIMITS_CONFIG, RateLimits, type PrimaryLimits } from '../filters/rate-limit/registry.js';
import type { RedisStore } from '../filters/rate-limit/redis-store.js';
import type { Logger } from 'pino';
import { compileRoute } from '../pipeline/compile.js';
import type { RouteFilterDefinition } from '../pipeline/registry.js';
import type { CompiledRespond, CompiledRoute } from '../pipeline/types.js';
import type { ForwardSettings } from '../proxy/headers.js';
import { HostPathRouter, type Router } from '../router/index.js';
import { Cluster, type ClusterStartOptions } from '../upstream/cluster.js';

/**
 * Everything compiled from one config: router, clusters, header settings. Immutable once built.
 * A request reads the current Runtime once when it starts and keeps it to the end, so a reload
 * swaps one pointer and in-flight requests finish on the config they started with.
 *
 * Building one is pure (`usher explain` and a rejected reload build runtimes that never go
 * live); start() opens what its clusters need once it is the runtime serving requests.
 */
export class Runtime {
  readonly config: UsherConfig;
  readonly router: Router<CompiledRoute>;
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** The compiled routes in config order (the admin API lists them). */
  readonly routes: readonly CompiledRoute[];
  readonly forward: ForwardSettings;
  /** Rate-limit policies and stores; `globalLimits` is the listener filter's work (rate_limits.global). */
  readonly rateLimits: RateLimits;
  readonly globalLimits: RateLimitFilter | undefined;
  /** Cache stores (a reload keeps those whose settings are unchanged). */
  readonly caches: CacheStores;
  /** The WAF (a reload with the same `waf:` section keeps the loaded rule set). */
  readonly waf: WafRuntime | undefined;
  /** Stores of the previous runtime this one no longer uses: closed once that runtime drained. */
  readonly retiredStores: readonly RedisStore[];
  /** Counters for tests and, later, metrics. */
  readonly stats = { requests: 0 };
  /** Requests that started on this runtime and have not finished. */
  inflight = 0;
  /** Set when a reload retires this runtime: called once its last request finishes. */
  onDrained: (() => void) | null = null;

  private constructor(config: UsherConfig, clusters: ReadonlyMap<string, Cluster>, router: HostPathRouter<CompiledRoute>, routes: readonly CompiledRoute[], rateLimits: RateLimits, retiredStores: RedisStore[], caches: CacheStores, waf: WafRuntime | undefined) {
    this.config = config;
    this.waf = waf;
    this.routes = routes;
    this.caches = caches;
    this.rateLimits = rateLimits;
    this.globalLimits = globalFilter(rateLimits);
    this.retiredStores = retiredStores;
    this.clusters = clusters;
    this.forward = compileForward(config);
    this.router = router;
  }

  /**
   * Runtime.build for a reload while serving: the same steps, but it yields to the event loop
   * whenever a slice of them has taken `sliceMs`, so requests keep being answered meanwhile.
   * Building 20k routes in one go held the loop for ~80 ms, 20k upstreams for seconds
   * (bench/micro/reload.js, issue #11).
   */
  static async buildInSlices(
    config: UsherConfig,
    previous?: Runtime,
    filters: readonly RouteFilterDefinition[] = [],
    sliceMs = 8,
    limits?: PrimaryLimits,
  ): Promise<{ runtime: Runtime; retired: Cluster[] }> {
    const steps = Runtime.steps(config, previous, filters, limits);
    let since = performance.now();
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      if (performance.now() - since > sliceMs) {
        await new Promise((resolve) => setImmediate(resolve));
        since = performance.now();
      }
    }
  }

  /**
   * Goes live: starts every cluster not running yet (reused ones are, and keep their state).
   * `stores: false`: no Redis connection (a primary of workers decides no request itself).
   */
  start(options: ClusterStartOptions & { stores?: boolean } = {}, log?: Logger): void {
    for (const c of this.clusters.values()) c.start(options);
    if (options.stores !== false) {
      this.rateLimits.start(log);
      this.caches.start((name, err) => log?.error({ cache: name, err }, 'cache store: could not read its directory; it stays empty'), log);
    }
  }

  /** Graceful: lets dispatched requests finish, then closes every cluster's connections. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.clusters.values()].map((c) => c.close()));
    await this.rateLimits.close();
    await this.caches.close();
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([...this.clusters.values()].map((c) => c.destroy()));
    await this.rateLimits.close();
    await this.caches.close();
  }

  /**
   * Builds a runtime, reusing clusters from `previous` whose config is unchanged so that their
   * connection pools (and, later, health state) survive a reload. Returns the clusters that the
   * new runtime no longer uses; the caller closes them once the old runtime has drained.
   * Starts nothing: new clusters go live with runtime.start(), once the caller commits to it.
   */
  static build(config: UsherConfig, previous?: Runtime, filters: readonly RouteFilterDefinition[] = [], limits?: PrimaryLimits): { runtime: Runtime; retired: Cluster[] } {
    const steps = Runtime.steps(config, previous, filters, limits);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /** The work of build(), one cluster or one route per step. */
  private static *steps(config: UsherConfig, previous: Runtime | undefined, filters: readonly RouteFilterDefinition[], limits: PrimaryLimits | undefined): Generator<void, { runtime: Runtime; retired: Cluster[] }> {
    const clusters = new Map<string, Cluster>();
    const reused = new Set<Cluster>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const old = previous?.clusters.get(name);
      if (old && old.fingerprint === Cluster.fingerprint(upstream)) {
        clusters.set(name, old);
        reused.add(old);
      } else {
        // A changed upstream of the same name is a new cluster that inherits what must outlive
        // the change (the generated sticky secret, so clients keep their servers).
        clusters.set(name, new Cluster(upstream, old));
      }
      yield;
    }
    const { rateLimits, retired: retiredStores } = RateLimits.build(config.rate_limits ?? NO_RATE_LIMITS_CONFIG, previous?.rateLimits, limits);
    const caches = CacheStores.build(config.caches, previous?.caches);
    const waf = WafRuntime.build(config.waf, previous?.waf);
    yield;
    const compile = routeCompiler(clusters, rateLimits, caches, waf, filters);
    const router = new HostPathRouter<CompiledRoute>();
    const routes: CompiledRoute[] = [];
    for (const rc of config.routes) {
      const route = compile(rc);
      routes.push(route);
      router.add(rc, route);
      yield;
    }
    router.seal();
    const retired = previous ? [...previous.clusters.values()].filter((c) => !reused.has(c)) : [];
    return { runtime: new Runtime(config, clusters, router, routes, rateLimits, retiredStores, caches, waf), retired };
  }
}

/** Each route's phase arrays, from the filter registry (src/filters/index.ts) and any filters the embedding program added after the built-in ones. */
function routeCompiler(clusters: ReadonlyMap<string, Cluster>, rateLimits: RateLimits, caches: CacheStores, waf: WafRuntime | undefined, extra: readonly RouteFilterDefinition[]): (rc: UsherConfig['routes'][number]) => CompiledRoute {
  const definitions = extra.length === 0 ? ROUTE_FILTERS : [...ROUTE_FILTERS, ...extra];
  const deps = { clusters, rateLimits, caches, ...(waf === undefined ? {} : { waf }) };
  return (rc) => compileRoute(rc, definitions, deps, rc.respond === undefined ? undefined : compileRespond(rc.respond));
}

function compileForward(config: UsherConfig): ForwardSettings {
  const trusted = trustedProxyList(config.proxy.trusted_proxies);
  return {
    trusted,
    via: config.proxy.via === null ? null : `1.1 ${config.proxy.via}`,
    via2: config.proxy.via === null ? null : `2 ${config.proxy.via}`,
    dropUnderscore: config.proxy.drop_underscore_headers,
    requestIdHeader: config.proxy.request_id_header.toLowerCase(),
    hideResponse: new Set(config.proxy.hide_headers.map((h) => h.toLowerCase())),
  };
}

function compileRespond(r: { status: number; body: string; headers: Record<string, string> }): CompiledRespond {
  const body = Buffer.from(r.body);
  const headers: string[] = [];
  let hasType = false;
  for (const [k, v] of Object.entries(r.headers)) {
    if (k.toLowerCase() === 'content-length') continue;
    if (k.toLowerCase() === 'content-type') hasType = true;
    headers.push(k, v);
  }
  if (!hasType && body.length > 0) headers.push('content-type', 'text/plain; charset=utf-8');
  headers.push('content-length', String(body.length));
  return Object.freeze({ status: r.status, headers: Object.freeze(headers), body });
}
