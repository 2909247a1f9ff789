// The balancer seam: pure and synchronous over an immutable snapshot of endpoints. It knows
// nothing of HTTP. Health (active, passive) is produced elsewhere and only shows here through
// `available`. Every balancer lives in balancers/<name>/ and passes one conformance suite.

export interface BalancerEndpoint {
  readonly id: string;
  readonly weight: number;
  /** Whether the endpoint may take traffic now (health, ejection, draining). */
  available(): boolean;
}

export interface PickContext {
  /** Endpoints that already failed this request (a retry must go elsewhere). */
  readonly exclude?: ReadonlySet<BalancerEndpoint> | undefined;
  /** The n-th attempt of this request, 0-based. */
  readonly attempt: number;
  /** Key for hashing balancers (client IP, header, cookie...), when configured. */
  readonly hashKey?: string | undefined;
}

export interface Balancer<E extends BalancerEndpoint = BalancerEndpoint> {
  /** Returns an available endpoint not in ctx.exclude, or undefined when there is none. */
  pick(ctx: PickContext): E | undefined;
}

export type BalancerFactory = <E extends BalancerEndpoint>(endpoints: readonly E[]) => Balancer<E>;
