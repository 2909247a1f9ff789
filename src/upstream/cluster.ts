import { randomBytes } from 'node:crypto';
import type { UpstreamConfig } from './config/types.js';
import type { PickContext } from './balancer.js';
import { hashKeyOf, parseHashKey, type HashKeySpec } from './balancers/hash/key.js';
import { stickyToken } from './balancers/sticky/index.js';
import { Endpoint } from './endpoint.js';
import { ActiveHealthChecker, type ProbeResult, type ProbeTarget } from './health/active.js';
import { OutlierDetector } from './health/outlier.js';
import { endpointsChannel, probeChannel, type EndpointsEvent, type ProbeEvent } from './health/state.js';
import { PrioritySet } from './priority.js';
import { Admission } from './admission.js';
import { discoveredEndpoints, namedServers } from './discovery/endpoints.js';
import { DnsDiscovery, type Resolved } from './discovery/dns.js';
import { RetryPolicy } from './retry.js';

/** How a cluster goes live. */
export interface ClusterStartOptions {
  /**
   * false: run no active health checks in this process, even with a `health_check` section.
   * The results are fed in from outside through applyProbe: the seam for a multi-process
   * primary that probes once and publishes to its workers. Default true.
   */
  probes?: boolean;
  /**
   * false: run no DNS discovery here; resolved endpoint sets are fed in with applyResolved (the
   * primary of several workers resolves once). Default true.
   */
  discovery?: boolean;
  /** Told of every local probe result and DNS answer: a primary forwards them to its workers. */
  publish?: ClusterPublisher;
}

/** Where a prober's results go besides its own cluster (src/server/workers/primary.ts). */
export interface ClusterPublisher {
  probe(cluster: Cluster, id: string, result: ProbeResult, transition: 'up' | 'down' | null, latencyMs: number): void;
  resolved(cluster: Cluster, resolved: Resolved): void;
}

/**
 * An upstream: its endpoints and the balancer over them. This is the only thing the proxy
 * stage talks to. Clusters survive reloads when their config did not change (see runtime).
 *
 * Lifecycle: built (pure: no pool, timer, socket or DNS query, so `usher explain` and a
 * rejected reload send nothing) → start() when the runtime holding it goes live (pools, active
 * checks, DNS discovery, readmission timers) → stopProbes() when a reload retires it →
 * close()/destroy().
 */
export class Cluster {
  readonly name: string;
  readonly config: UpstreamConfig;
  /** The current snapshot; DNS discovery swaps in a new one (never mutated in place). */
  endpoints: readonly Endpoint[];
  /** "preserve" → undefined (keep the client's Host); otherwise the Host to send, per endpoint or literal. */
  readonly hostMode: 'preserve' | 'upstream' | 'literal';
  private balancer: PrioritySet;
  /** A JSON fingerprint of the config, to reuse the cluster across reloads when unchanged. */
  readonly fingerprint: string;
  /** What the balancer hashes on (hash: the configured key; sticky: its cookie), or null. */
  private readonly keySpec: HashKeySpec | null;
  /** sticky: endpoint → cookie token, and the Set-Cookie attributes. */
  private stickyTokens: Map<Endpoint, string> | null = null;
  private readonly secret: string;
  /** The random sticky secret when none is configured (handed on to a replacing cluster). */
  private readonly generatedSecret: string | null;
  private readonly discovery: DnsDiscovery | null;
  /** Endpoints dropped by discovery, finishing their requests. */
  private readonly retiring = new Set<Endpoint>();
  private readonly stickyAttributes: string = '';
  private readonly outlier: OutlierDetector | null;
  private readonly checker: ActiveHealthChecker | null;
  readonly retry: RetryPolicy;
  /** Circuit breaker and queue; null when no limits are configured. */
  readonly admission: Admission | null;
  private state: 'built' | 'live' | 'closed' = 'built';
  private publisher: ClusterPublisher | null = null;
  /** The last DNS answer applied (a worker that starts later is handed it). */
  lastResolved: Resolved | null = null;
  /** Metrics' series for this upstream, bound on first use (null while metrics are off). */
  meters: unknown = null;

  /**
   * `previous`: the cluster this one replaces on a reload (same upstream name, changed config).
   * Its servers' health carries over to the same servers here, and without a configured
   * sticky.secret its generated one is kept, so that the cookies clients hold stay valid.
   */
  constructor(config: UpstreamConfig, previous?: Cluster) {
    this.name = config.name;
    this.config = config;
    this.endpoints = Object.freeze(config.servers.map((s) => new Endpoint(s, config)));
    if (previous !== undefined) this.inheritHealth(previous);
    this.generatedSecret = config.sticky.secret === null ? (previous?.generatedSecret ?? randomBytes(32).toString('hex')) : null;
    const secret = (this.secret = config.sticky.secret ?? this.generatedSecret!);
    this.balancer = new PrioritySet(this.endpoints, config.balance, config.panic_threshold, {
      dynamicWeights: config.slow_start > 0,
      secret,
    });
    this.keySpec = config.balance === 'hash' ? parseHashKey(config.hash.key) : config.balance === 'sticky' ? { kind: 'cookie', name: config.sticky.cookie } : null;
    if (config.balance === 'sticky') {
      this.stickyTokens = new Map(this.endpoints.map((e) => [e, stickyToken(secret, e.id)]));
      const maxAge = config.sticky.max_age === null ? '' : `; Max-Age=${Math.floor(config.sticky.max_age / 1000)}`;
      this.stickyAttributes = `; Path=/; HttpOnly; SameSite=Lax${maxAge}`;
    }
    this.retry = new RetryPolicy(config.retry);
    const limited = config.circuit_breaker !== null || config.servers.some((s) => s.max_requests !== null);
    this.admission = limited ? new Admission(config.circuit_breaker ?? { max_requests: null, max_pending: 0, queue_timeout: 0 }, this.endpoints) : null;
    this.outlier = config.outlier_detection === null ? null : new OutlierDetector(this.endpoints, config.outlier_detection);
    this.checker = config.health_check === null ? null : new ActiveHealthChecker(this.endpoints, config.health_check, this.onProbe);
    const names = config.dns === null ? [] : namedServers(config.servers);
    this.discovery = config.dns === null || names.length === 0 ? null : new DnsDiscovery(config.dns, names, this.onResolved);
    this.hostMode = config.host_header === 'preserve' ? 'preserve' : config.host_header === 'upstream' ? 'upstream' : 'literal';
    this.fingerprint = Cluster.fingerprint(config);
  }

  /** Servers of the replaced cluster (same URL) keep their health: a dead one stays out. */
  private inheritHealth(previous: Cluster): void {
    const active = this.config.health_check !== null;
    const passive = this.config.outlier_detection !== null;
    for (const e of this.endpoints) {
      const old = previous.endpoints.find((x) => x.id === e.id);
      if (old === undefined) continue;
      e.health.inherit(old.health, active);
      if (!passive) e.health.ejected = false;
    }
  }

  /** Whether start() ran (and close() did not). */
  get live(): boolean {
    return this.state === 'live';
  }

  /** Whether this process runs the active checks (false before start, with `probes: false`, and after stopProbes). */
  get probing(): boolean {
    return this.checker?.probing ?? false;
  }

  /**
   * Goes live: opens the endpoints' pools, starts active checks (unless `probes: false`), DNS
   * discovery, and the readmission timers of servers that arrived ejected over a reload.
   * Idempotent (a reload starts every cluster of the new runtime; reused ones are running).
   */
  start(options: ClusterStartOptions = {}): void {
    if (this.state !== 'built') return;
    this.state = 'live';
    for (const e of this.endpoints) e.start();
    if (this.outlier !== null) for (const e of this.endpoints) this.outlier.resume(e);
    this.publisher = options.publish ?? null;
    if (options.probes !== false) this.checker?.start();
    if (options.discovery !== false) this.discovery?.start();
  }

  static fingerprint(config: UpstreamConfig): string {
    const { source: _source, ...rest } = config;
    return JSON.stringify(rest);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    return this.balancer.pick(ctx);
  }

  /** Passive health: an upstream answered `status` (headers received). */
  observeStatus(endpoint: Endpoint, status: number): void {
    if (this.outlier === null) return;
    if (status >= 500) this.outlier.serverError(endpoint, `status ${status}`);
    else this.outlier.success(endpoint);
  }

  /** Passive health: a request failed without a response; `connected` says whether a connection was made. */
  observeFailure(endpoint: Endpoint, reason: string, connected: boolean): void {
    if (this.outlier === null) return;
    if (connected) this.outlier.serverError(endpoint, reason);
    else this.outlier.connectFailure(endpoint, reason);
  }

  private readonly onProbe = (target: ProbeTarget, result: ProbeResult, transition: 'up' | 'down' | null, latencyMs: number): void => {
    this.applyProbe(target.id, result, transition, latencyMs);
    this.publisher?.probe(this, target.id, result, transition, latencyMs);
  };

  /**
   * Applies one active-check result to the endpoint with this id (`transition`: the verdict it
   * led to after rise/fall, or null). The local checker calls it; with several worker processes,
   * workers started with `probes: false` call it with the results one prober publishes.
   */
  applyProbe(id: string, result: ProbeResult, transition: 'up' | 'down' | null, latencyMs: number | null = null): void {
    const e = this.endpoints.find((x) => x.id === id);
    if (e === undefined) return;
    e.health.lastCheck = { at: Date.now(), ok: result.ok, detail: result.detail, latencyMs };
    if (probeChannel.hasSubscribers) {
      probeChannel.publish({ cluster: this, endpoint: e, upstream: this.name, server: e.id, ok: result.ok, detail: result.detail, latencyMs } satisfies ProbeEvent);
    }
    if (transition !== null) e.health.setActive(transition === 'up', result.detail);
    if (result.ok) this.outlier?.checkPassed(e);
  }

  private readonly onResolved = (resolved: Resolved): void => {
    this.applyResolved(resolved);
    this.publisher?.resolved(this, resolved);
  };

  /** A DNS answer: from this cluster's discovery, or fed in by a primary that resolves for its workers. */
  applyResolved(resolved: Resolved): void {
    if (this.config.dns === null) return;
    this.lastResolved = resolved;
    this.applyEndpoints(discoveredEndpoints(this.config, this.endpoints, resolved));
  }

  /** Swaps in a new endpoint set: new balancers over it; removed endpoints finish what they have. */
  private applyEndpoints(next: readonly Endpoint[]): void {
    const old = this.endpoints;
    const config = this.config;
    this.endpoints = Object.freeze([...next]);
    this.balancer = new PrioritySet(this.endpoints, config.balance, config.panic_threshold, { dynamicWeights: config.slow_start > 0, secret: this.secret });
    if (this.stickyTokens !== null) this.stickyTokens = new Map(this.endpoints.map((e) => [e, stickyToken(this.secret, e.id)]));
    this.outlier?.setSubjects(this.endpoints);
    this.checker?.setTargets(this.endpoints);
    this.admission?.setEndpoints(this.endpoints);
    // Discovery runs only on a live cluster: servers that arrive now go live with it.
    if (this.state === 'live') for (const e of this.endpoints) e.start();
    for (const e of old) {
      if (next.includes(e)) continue;
      if (e.outlierTimer !== null) clearTimeout(e.outlierTimer);
      this.retiring.add(e);
      // undici's close lets dispatched requests finish, then closes the connections.
      void e.close().finally(() => this.retiring.delete(e));
    }
    if (endpointsChannel.hasSubscribers) {
      const event: EndpointsEvent = {
        upstream: this.name,
        cluster: this,
        servers: this.endpoints.map((e) => e.id),
        added: next.filter((e) => !old.includes(e)).map((e) => e.id),
        removed: old.filter((e) => !next.includes(e)).map((e) => e.id),
      };
      endpointsChannel.publish(event);
    }
  }

  /** The admin API: drain (no new requests) or take back one server. Kept until a reload changes this upstream. */
  setDrained(endpoint: Endpoint, drained: boolean): void {
    endpoint.setHealthy(!drained);
  }

  /**
   * The admin API: a server's weight until a reload changes this upstream (null: back to the
   * configured one). The balancers are rebuilt: some fix their tables from the weights.
   */
  setWeight(endpoint: Endpoint, weight: number | null): void {
    endpoint.baseWeight = weight ?? endpoint.configuredWeight;
    const config = this.config;
    this.balancer = new PrioritySet(this.endpoints, config.balance, config.panic_threshold, { dynamicWeights: config.slow_start > 0, secret: this.secret });
  }

  /** Whether a retry of a request that tried `exclude` could go to another server. */
  hasUntried(exclude: { has(e: Endpoint): boolean } | undefined): boolean {
    return this.balancer.hasUntried(exclude);
  }

  /** The balancer's key for a request (hash, sticky), from plain request data; undefined when none. */
  hashKeyOf(rawHeaders: readonly string[], path: string, clientIp: string): string | undefined {
    return this.keySpec === null ? undefined : hashKeyOf(this.keySpec, rawHeaders, path, clientIp);
  }

  /** sticky: the Set-Cookie value pinning the client to `endpoint`, unless its cookie already does. */
  stickyCookie(endpoint: Endpoint, presented: string | undefined): string | undefined {
    if (this.stickyTokens === null) return undefined;
    const token = this.stickyTokens.get(endpoint);
    if (token === undefined || token === presented) return undefined;
    return `${this.config.sticky.cookie}=${token}${this.stickyAttributes}`;
  }

  /** The Host header value for a request sent to `endpoint`; undefined keeps the client's. */
  hostFor(endpoint: Endpoint): string | undefined {
    if (this.hostMode === 'preserve') return undefined;
    return this.hostMode === 'upstream' ? endpoint.authority : this.config.host_header;
  }

  /**
   * A reload retired this cluster: stop probing and resolving at once (requests still running
   * on the previous runtime may take longer to finish than anyone wants probes for a config
   * that is gone: a WebSocket may never). Its state stays as it is for those requests.
   */
  stopProbes(): void {
    this.discovery?.stop();
    this.checker?.stop();
  }

  /** Stops the health producers (timers); the pools stay until close/destroy. */
  stopHealth(): void {
    this.stopProbes();
    this.outlier?.close();
  }

  async close(): Promise<void> {
    this.state = 'closed';
    this.stopHealth();
    await Promise.allSettled([...this.endpoints, ...this.retiring].map((e) => e.close()));
  }

  async destroy(): Promise<void> {
    this.state = 'closed';
    this.stopHealth();
    await Promise.allSettled([...this.endpoints, ...this.retiring].map((e) => e.destroy()));
  }
}

