// Everything rate limits need at run time, built from one config: a Limiter per policy (its
// key function, its buckets, its in-flight counts) and the shared stores. Built pure with the
// Runtime; start() opens the Redis connections. A reload keeps a store whose config is
// unchanged (one client across reloads) and a policy whose config and store are unchanged (its
// local buckets keep counting); the rest is retired and closed once the old runtime drained.
import type { Logger } from 'pino';
import type { RateLimitPolicy, RateLimitsConfig } from './config.js';
import { compileKey } from './key.js';
import { InflightCounts, LocalBuckets } from './local-store.js';
import { RedisStore } from './redis-store.js';
import type { RequestContext } from '../../pipeline/types.js';
import type { Decision } from './gcra.js';

/**
 * Buckets kept elsewhere than this process: a Redis store, or the primary of several worker
 * processes deciding for the local policies of all (src/server/workers/limits.ts).
 */
export interface SharedBuckets {
  readonly fingerprint: string;
  /** Policy name → its on_store_error, for the store's own log lines. */
  readonly policies: Map<string, 'fail_open' | 'fail_closed'>;
  take(key: string, interval: number, burst: number): Promise<Decision>;
}

/** What the primary of several workers decides for them: local rates and concurrency. */
export type PrimaryLimits = SharedBuckets & SharedSlots;

/** Concurrency slots kept by the primary of several workers, for every worker. */
export interface SharedSlots {
  /** Takes a slot unless `max` are taken: resolves with the count now held (this one included), or -1 when refused. */
  acquire(key: string, max: number): Promise<number>;
  release(key: string): void;
}

export class Limiter {
  readonly policy: RateLimitPolicy;
  readonly fingerprint: string;
  readonly keyOf: (ctx: RequestContext) => string;
  /** Local buckets: the policy's own store, or its fallback while Redis is unreachable. */
  readonly local: LocalBuckets | undefined;
  readonly shared: SharedBuckets | undefined;
  /** A local policy decided by the primary of several workers: its own buckets while the primary does not answer. */
  readonly viaPrimary: boolean;
  readonly inflight = new InflightCounts();
  /** Concurrency decided by the primary of several workers (undefined: `inflight`, in this process). */
  readonly slots: SharedSlots | undefined;
  /** RateLimit-Policy item, fixed per policy. */
  readonly policyField: string;
  readonly stats = { allowed: 0, limited: 0, dryRunLimited: 0, storeErrors: 0, failedClosed: 0 };
  private lastDryRunLog = 0;
  private dryRunSuppressed = 0;
  log: Logger | undefined;

  constructor(policy: RateLimitPolicy, shared: SharedBuckets | undefined, maxKeys: number, viaPrimary = false, slots?: SharedSlots) {
    this.policy = policy;
    this.slots = policy.concurrency === undefined ? undefined : slots;
    this.fingerprint = JSON.stringify(policy) + (shared?.fingerprint ?? '') + String(maxKeys);
    this.keyOf = compileKey(policy.key);
    this.shared = shared;
    this.viaPrimary = viaPrimary;
    this.local = policy.rate === undefined ? undefined : shared === undefined || viaPrimary ? new LocalBuckets(maxKeys) : policy.fallback === undefined ? undefined : new LocalBuckets(maxKeys);
    const name = JSON.stringify(policy.name);
    const items: string[] = [];
    if (policy.rate !== undefined) items.push(`${name};q=${policy.rate.rate};w=${Math.max(1, Math.ceil(policy.rate.per / 1000))};usher-burst=${policy.rate.burst}`);
    else if (policy.concurrency !== undefined) items.push(`${name};q=${policy.concurrency};qu="concurrent-requests"`);
    this.policyField = items.join(', ');
  }

  /** A would-be refusal of a dry-run policy: counted, and logged at most once a second. */
  dryRun(ctx: RequestContext, key: string, what: string): void {
    this.stats.dryRunLimited++;
    const now = performance.now();
    if (now - this.lastDryRunLog < 1000) {
      this.dryRunSuppressed++;
      return;
    }
    this.log?.warn({ policy: this.policy.name, key, request_id: ctx.requestId, limit: what, suppressed: this.dryRunSuppressed }, 'rate limit dry run: this request would be refused');
    this.lastDryRunLog = now;
    this.dryRunSuppressed = 0;
  }
}

export class RateLimits {
  readonly limiters: ReadonlyMap<string, Limiter>;
  readonly stores: ReadonlyMap<string, RedisStore>;
  /** The policies of `rate_limits.global`, in order. */
  readonly global: readonly Limiter[];
  readonly connectionsPerClient: number | undefined;

  private constructor(limiters: Map<string, Limiter>, stores: Map<string, RedisStore>, config: RateLimitsConfig) {
    this.limiters = limiters;
    this.stores = stores;
    this.global = config.global.map((n) => limiters.get(n)!);
    this.connectionsPerClient = config.connections_per_client;
  }

  /**
   * Builds from config, reusing from `previous` what is unchanged. Returns the stores no longer
   * used. `primary`: in a worker process, the local rate policies are decided there.
   */
  static build(config: RateLimitsConfig, previous?: RateLimits, primary?: PrimaryLimits): { rateLimits: RateLimits; retired: RedisStore[] } {
    const stores = new Map<string, RedisStore>();
    for (const [name, sc] of Object.entries(config.stores)) {
      const old = previous?.stores.get(name);
      stores.set(name, old !== undefined && old.fingerprint === RedisStore.fingerprint(sc) ? old : new RedisStore(sc));
    }
    const limiters = new Map<string, Limiter>();
    for (const [name, p] of Object.entries(config.policies)) {
      const viaPrimary = p.store === 'local' && primary !== undefined && p.rate !== undefined;
      const shared = viaPrimary ? primary : p.store === 'local' ? undefined : stores.get(p.store);
      const fresh = new Limiter(p, shared, config.max_keys, viaPrimary, primary);
      const old = previous?.limiters.get(name);
      const limiter = old !== undefined && old.fingerprint === fresh.fingerprint && old.shared === shared && old.slots === fresh.slots ? old : fresh;
      limiters.set(name, limiter);
    }
    for (const s of stores.values()) s.policies.clear();
    for (const l of limiters.values()) l.shared?.policies.set(l.policy.name, l.policy.on_store_error);
    const kept = new Set(stores.values());
    const retired = previous === undefined ? [] : [...previous.stores.values()].filter((s) => !kept.has(s));
    return { rateLimits: new RateLimits(limiters, stores, config), retired };
  }

  get(name: string): Limiter | undefined {
    return this.limiters.get(name);
  }

  /** Goes live: opens the stores' connections (kept ones are open already). */
  start(log: Logger | undefined): void {
    for (const l of this.limiters.values()) l.log = log;
    for (const s of this.stores.values()) s.start(log);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.stores.values()].map((s) => s.close()));
  }
}

/** What a config without `rate_limits` has. */
export const NO_RATE_LIMITS_CONFIG: RateLimitsConfig = Object.freeze({ policies: {}, stores: {}, global: [], max_keys: 100 });
