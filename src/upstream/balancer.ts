// The balancer seam: pure and synchronous over an immutable snapshot of endpoints. It knows
// nothing of HTTP. Health (active, passive) is produced elsewhere and only shows here through
// `available`. Every balancer lives in balancers/<name>/ and passes one conformance suite.

export interface BalancerEndpoint {
  readonly id: string;
  /** Effective weight now (it ramps during slow start, so balancers read it on every pick). */
  readonly weight: number;
  /** The configured weight, when it differs from `weight` during slow start (hash tables use it). */
  readonly baseWeight?: number;
  /** Requests in flight on this endpoint (least_request, least_conn); 0 when not tracked. */
  readonly inflight?: number;
  /** Whether the endpoint may take traffic now (health, ejection, draining). */
  available(): boolean;
}

export interface PickContext {
  /** Endpoints that already failed this request (a retry must go elsewhere). */
  readonly exclude?: { has(e: BalancerEndpoint): boolean } | undefined;
  /** The n-th attempt of this request, 0-based. */
  readonly attempt: number;
  /** Key for hashing balancers (client IP, header, cookie...), when configured. */
  readonly hashKey?: string | undefined;
}

export interface Balancer<E extends BalancerEndpoint = BalancerEndpoint> {
  /** Returns an available endpoint not in ctx.exclude, or undefined when there is none. */
  pick(ctx: PickContext): E | undefined;
}

export interface BalancerOptions {
  /** Weights change over time (slow start): a balancer must not cache them. */
  readonly dynamicWeights?: boolean;
  /** Random source in [0, 1) (tests pass a seeded one). */
  readonly random?: () => number;
  /** sticky: the key its cookie tokens are signed with (random per process when absent). */
  readonly secret?: string;
}

export type BalancerFactory = <E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions) => Balancer<E>;

/** The endpoint may take this pick: available and not already tried by this request. */
export function usable(e: BalancerEndpoint, ctx: PickContext): boolean {
  return e.available() && !(ctx.exclude !== undefined && ctx.exclude.has(e));
}
