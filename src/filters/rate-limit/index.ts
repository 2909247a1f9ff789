// `rate_limits:` — per-key rate limits (GCRA, gcra.ts) and concurrency limits, as a route
// filter (a route's `rate_limits: [names]`, in the request phase) and as a listener filter (the
// policies of `rate_limits.global`, in early_request, on every request routed or not). Every
// policy of a request applies; the first refusal answers 429 rate_limited (rate) or
// concurrency_limited, with Retry-After, RateLimit and RateLimit-Policy
// (draft-ietf-httpapi-ratelimit-headers-10: `RateLimit: "name";r=2;t=5`,
// `RateLimit-Policy: "name";q=100;w=60`). A shared store that fails answers per policy: fail_open
// (its local fallback, if any) or 503 rate_limit_unavailable (fail_closed). Concurrency slots
// are released in the done phase, which runs exactly once.
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition, RouteFilterDeps } from '../../pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse, type RequestContext, type ResponseHead, type StateKey } from '../../pipeline/types.js';
import type { Decision } from './gcra.js';
import type { Limiter, RateLimits } from './registry.js';

/** The store failed and the policy fails closed. */
const UNAVAILABLE = 'unavailable' as const;
type Outcome = Decision | typeof UNAVAILABLE | undefined;

interface State {
  readonly keys: string[];
  readonly outcomes: Outcome[];
  /** Concurrency slots held, released in done. */
  readonly held: boolean[];
  /** Index of the policy that refused (concurrency or rate), or -1. */
  refused: number;
  /** Slots held per key when the primary counts them (for the RateLimit header). */
  inUse?: number[];
}

const ROUTE_STATE = stateKey<State>('rate_limit');
const GLOBAL_STATE = stateKey<State>('rate_limit_global');
const GLOBAL_FILTER = stateKey<RateLimitFilter>('rate_limit_global_filter');

export class RateLimitFilter implements Filter {
  readonly name = 'rate_limit';

  constructor(
    readonly limiters: readonly Limiter[],
    private readonly kState: StateKey<State> = ROUTE_STATE,
  ) {}

  request(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    return this.check(ctx);
  }

  /**
   * In three steps: concurrency slots; then the local rates, all evaluated before any token is
   * taken (a request one policy refuses costs the others nothing); then the shared stores, one
   * round trip each, only for a request the local policies let through. A shared policy's token
   * is taken on the server, so it counts even a request another shared policy refuses.
   */
  check(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    // `usher explain`: takes no token and holds no slot.
    if (ctx.explaining) return undefined;
    const ls = this.limiters;
    const n = ls.length;
    const st: State = { keys: new Array<string>(n), outcomes: new Array<Outcome>(n), held: new Array<boolean>(n).fill(false), refused: -1 };
    ctx.set(this.kState, st);
    let remote: Promise<void>[] | undefined;
    for (let i = 0; i < n; i++) {
      const l = ls[i]!;
      const key = (st.keys[i] = l.keyOf(ctx));
      const p = l.policy;
      if (p.concurrency === undefined) continue;
      if (l.slots !== undefined) {
        // With several workers: the primary counts the slots of all (one round trip).
        (remote ??= []).push(l.slots.acquire(`${p.name}\0${key}`, p.concurrency).then((count) => {
          if (count < 0) return;
          st.held[i] = true;
          (st.inUse ??= new Array<number>(n))[i] = count;
        }));
        continue;
      }
      if (l.inflight.tryAcquire(key, p.concurrency)) st.held[i] = true;
      else if (p.dry_run) l.dryRun(ctx, key, 'concurrency');
      else return this.concurrencyRefused(st, i);
    }
    if (remote === undefined) return this.rates(ctx, st);
    return Promise.all(remote).then(() => {
      for (let i = 0; i < n; i++) {
        const l = ls[i]!;
        if (l.slots === undefined || st.held[i]) continue;
        if (l.policy.dry_run) l.dryRun(ctx, st.keys[i]!, 'concurrency');
        else return this.concurrencyRefused(st, i);
      }
      return this.rates(ctx, st);
    });
  }

  private concurrencyRefused(st: State, i: number): LocalResponse {
    const l = this.limiters[i]!;
    l.stats.limited++;
    st.refused = i;
    release(this.limiters, st);
    return concurrencyReply(l.policy.concurrency!);
  }

  /** The rate policies, once the concurrency slots are held. */
  private rates(ctx: RequestContext, st: State): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const ls = this.limiters;
    const n = ls.length;
    let shared = false;
    let tats: (number | undefined)[] | undefined;
    for (let i = 0; i < n; i++) {
      const l = ls[i]!;
      const rate = l.policy.rate;
      if (rate === undefined) continue;
      if (l.shared !== undefined) {
        shared = true;
        continue;
      }
      const e = l.local!.evaluate(st.keys[i]!, rate.interval, rate.burst);
      st.outcomes[i] = e.decision;
      if (e.tat !== undefined) (tats ??= new Array<number | undefined>(n))[i] = e.tat;
    }
    const refused = this.verdict(ctx, st);
    if (refused !== undefined) return refused;
    if (tats !== undefined) for (let i = 0; i < n; i++) if (tats[i] !== undefined) ls[i]!.local!.commit(st.keys[i]!, tats[i]!);
    if (!shared) return undefined;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const l = ls[i]!;
      if (l.shared !== undefined && l.policy.rate !== undefined) pending.push(sharedDecision(l, st.keys[i]!).then((o) => (st.outcomes[i] = o)));
    }
    return Promise.all(pending).then(() => this.verdict(ctx, st, true));
  }

  /** Counts the outcomes so far (only the shared ones when `sharedOnly`) and answers a refusal. */
  private verdict(ctx: RequestContext, st: State, sharedOnly = false): LocalResponse | undefined {
    const ls = this.limiters;
    let refused = -1;
    let unavailable = false;
    for (let i = 0; i < ls.length; i++) {
      const o = st.outcomes[i];
      const l = ls[i]!;
      if (o === undefined || (sharedOnly && l.shared === undefined)) continue;
      if (o !== UNAVAILABLE && o.allowed) {
        l.stats.allowed++;
        continue;
      }
      if (l.policy.dry_run) {
        l.dryRun(ctx, st.keys[i]!, o === UNAVAILABLE ? 'store unavailable' : 'rate');
        continue;
      }
      if (o === UNAVAILABLE) {
        l.stats.failedClosed++;
        unavailable = true;
      } else {
        l.stats.limited++;
        if (refused < 0 || o.reset > (st.outcomes[refused] as Decision).reset) refused = i;
      }
    }
    if (unavailable) {
      release(ls, st);
      return UNAVAILABLE_REPLY;
    }
    if (refused < 0) return undefined;
    st.refused = refused;
    release(ls, st);
    const seconds = Math.max(1, Math.ceil((st.outcomes[refused] as Decision).reset / 1000));
    return { status: 429, headers: ['retry-after', String(seconds), 'content-type', 'text/plain; charset=utf-8'], body: `rate limited: retry in ${seconds} s\n`, reason: 'rate_limited' };
  }

  response(ctx: RequestContext, head: ResponseHead): void {
    const st = ctx.get(this.kState);
    if (st === undefined) return;
    const ls = this.limiters;
    let limit = '';
    let policy = '';
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      if (!l.policy.headers && st.refused !== i) continue;
      const o = st.outcomes[i];
      let item: string | undefined;
      if (o !== undefined && o !== UNAVAILABLE) item = `${JSON.stringify(l.policy.name)};r=${o.remaining};t=${Math.ceil(o.reset / 1000)}`;
      else if (o === undefined && l.policy.concurrency !== undefined && l.policy.rate === undefined) {
        const inUse = l.slots === undefined ? l.inflight.count(st.keys[i]!) : (st.inUse?.[i] ?? l.policy.concurrency);
        item = `${JSON.stringify(l.policy.name)};r=${Math.max(0, l.policy.concurrency - inUse)}`;
      }
      if (item === undefined) continue;
      limit = limit === '' ? item : `${limit}, ${item}`;
      policy = policy === '' ? l.policyField : `${policy}, ${l.policyField}`;
    }
    if (limit !== '') head.headers.push('ratelimit', limit, 'ratelimit-policy', policy);
  }

  done(ctx: RequestContext): void {
    const st = ctx.get(this.kState);
    if (st !== undefined) release(this.limiters, st);
  }

  explain(): string {
    return `rate_limit (${this.limiters.map((l) => describe(l)).join('; ')})`;
  }
}

function describe(l: Limiter): string {
  const p = l.policy;
  const parts: string[] = [];
  if (p.rate !== undefined) parts.push(`${p.rate.rate} per ${p.rate.per} ms, burst ${p.rate.burst}`);
  if (p.concurrency !== undefined) parts.push(`${p.concurrency} in flight`);
  parts.push(`key ${p.key.map((k) => ('name' in k ? `${k.kind}:${k.name}` : k.kind)).join('+')}`, `store ${p.store}`);
  if (p.dry_run) parts.push('dry run');
  return `${p.name}: ${parts.join(', ')}`;
}

function release(ls: readonly Limiter[], st: State): void {
  for (let i = 0; i < ls.length; i++) {
    if (!st.held[i]) continue;
    st.held[i] = false;
    const l = ls[i]!;
    if (l.slots !== undefined) l.slots.release(`${l.policy.name}\0${st.keys[i]!}`);
    else l.inflight.release(st.keys[i]!);
  }
}

/** A decision from the shared store, or what the policy says to do without one. */
function sharedDecision(l: Limiter, key: string): Promise<Outcome> {
  const rate = l.policy.rate!;
  return l.shared!.take(`${l.policy.name}\0${key}`, rate.interval, rate.burst).catch((): Outcome => {
    l.stats.storeErrors++;
    if (l.policy.on_store_error === 'fail_closed') return UNAVAILABLE;
    const fb = l.viaPrimary ? rate : l.policy.fallback;
    return fb === undefined ? undefined : l.local!.take(key, fb.interval, fb.burst);
  });
}

const UNAVAILABLE_REPLY: LocalResponse = Object.freeze({
  status: 503,
  headers: ['content-type', 'text/plain; charset=utf-8', 'retry-after', '1'],
  body: 'rate limit store unavailable\n',
  reason: 'rate_limit_unavailable',
});

function concurrencyReply(max: number): LocalResponse {
  return { status: 429, headers: ['retry-after', '1', 'content-type', 'text/plain; charset=utf-8'], body: `too many requests in flight (at most ${max})\n`, reason: 'concurrency_limited' };
}

/** The route filter: the route's `rate_limits`, in the request phase. */
export const rateLimit: RouteFilterDefinition = {
  name: 'rate_limit',
  create: (rc: RouteConfig, deps: RouteFilterDeps) => {
    if (rc.rate_limits === undefined || deps.rateLimits === undefined) return undefined;
    const rl = deps.rateLimits;
    return new RateLimitFilter(rc.rate_limits.map((n) => rl.get(n)!));
  },
};

/**
 * The listener filter: `rate_limits.global` of the runtime serving the request, before routing.
 * The filter it ran is kept with the request, so response and done see the same one across a reload.
 */
export class GlobalRateLimit implements Filter {
  readonly name = 'rate_limit_global';
  constructor(private readonly current: () => RateLimitFilter | undefined) {}

  earlyRequest(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const f = this.current();
    if (f === undefined) return undefined;
    ctx.set(GLOBAL_FILTER, f);
    return f.check(ctx);
  }

  response(ctx: RequestContext, head: ResponseHead): void {
    ctx.get(GLOBAL_FILTER)?.response(ctx, head);
  }

  done(ctx: RequestContext): void {
    ctx.get(GLOBAL_FILTER)?.done(ctx);
  }

  explain(): string {
    return this.current()?.explain().replace(/^rate_limit/, 'rate_limit_global') ?? 'rate_limit_global (none)';
  }
}

/** The global filter of a RateLimits, built once per runtime. */
export function globalFilter(rl: RateLimits): RateLimitFilter | undefined {
  return rl.global.length === 0 ? undefined : new RateLimitFilter(rl.global, GLOBAL_STATE);
}

