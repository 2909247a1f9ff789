import { createHmac, randomBytes } from 'node:crypto';
import { usable, type Balancer, type BalancerEndpoint, type BalancerOptions, type PickContext } from '../../balancer.js';
import { RoundRobinBalancer } from '../round-robin/index.js';

/**
 * Sticky sessions: the first request is balanced by smooth weighted round robin; the proxy then
 * sets a cookie carrying the chosen endpoint's token, and later requests presenting it (as
 * ctx.hashKey) go back to that endpoint while it is available. The token is an HMAC of the
 * endpoint's id under a secret, so it names no address and a client cannot forge one for a
 * server of its choosing; an unknown or stale token is simply rebalanced.
 */
export class StickyBalancer<E extends BalancerEndpoint> implements Balancer<E> {
  private readonly byToken = new Map<string, E>();
  private readonly tokens = new Map<E, string>();
  private readonly fallback: RoundRobinBalancer<E>;

  constructor(endpoints: readonly E[], options?: BalancerOptions) {
    const secret = options?.secret ?? randomBytes(32).toString('hex');
    for (const e of endpoints) {
      const token = stickyToken(secret, e.id);
      this.byToken.set(token, e);
      this.tokens.set(e, token);
    }
    this.fallback = new RoundRobinBalancer(endpoints, options);
  }

  pick(ctx: PickContext): E | undefined {
    if (ctx.hashKey !== undefined) {
      const e = this.byToken.get(ctx.hashKey);
      if (e !== undefined && usable(e, ctx)) return e;
    }
    return this.fallback.pick(ctx);
  }

  /** The cookie value that names `e`. */
  tokenOf(e: E): string | undefined {
    return this.tokens.get(e);
  }
}

/** 128 bits of HMAC-SHA256, base64url: opaque, unforgeable without the secret, cookie-safe (RFC 6265 §4.1.1). */
export function stickyToken(secret: string, id: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url').slice(0, 22);
}

export function sticky<E extends BalancerEndpoint>(endpoints: readonly E[], options?: BalancerOptions): StickyBalancer<E> {
  return new StickyBalancer(endpoints, options);
}
