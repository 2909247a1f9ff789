// The `rate_limits:` section (named policies, their stores, what applies to every request) and
// a route's `rate_limits: [names]`: schema parts, defaults, normalised types, normaliser, checks.
// The registry (registry.ts) and the filters (index.ts) read the normalised RateLimitsConfig.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type ErrorFn, type Rec } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { duration, headerName, object, stringEnum } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';
import { dict } from '../../util/dict.js';
import { checkRedisConnection, normalizeRedisConnection, redisConnectionProps, type RedisConnection } from '../../util/redis.js';
import { BEFORE_ROUTING, type KeyPart } from './key-kinds.js';

export const RATE_LIMIT_DEFAULTS = {
  per: '1s',
  key: ['client_ip'] as const,
  on_store_error: 'fail_open' as const,
  store_timeout: '50ms',
  prefix: 'usher:rl:',
  max_keys: 100_000,
};

const NAME_PATTERN = '^[A-Za-z0-9_.-]+$';
const NAME_EXPECTED = 'letters, digits, "_", "." and "-"';

const KeyPartSchema = Type.Union(
  [
    stringEnum(['client_ip', 'route'] as const, { description: '`client_ip`: the TCP peer (after trusted proxies: still the peer). `route`: the route\'s name (one bucket per route).' }),
    object({ header: headerName('A request header; a request without it is keyed on the empty value.') }, { description: 'A request header.' }),
    object({ cookie: Type.String({ minLength: 1, description: 'A cookie name.' }) }, { description: 'A cookie (route policies only: cookies are parsed after routing).' }),
    object(
      { jwt_claim: Type.String({ minLength: 1, description: 'A claim name ("sub", "client_id"...).' }) },
      { description: 'A claim of the request\'s verified JWT (route policies of routes with `auth.jwt` only: the token is verified before the rate limits).' },
    ),
  ],
  { 'x-usher-expected': '"client_ip", "route", {header: name}, {cookie: name} or {jwt_claim: name}' },
);

const RateSchema = {
  rate: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests allowed per `per`, on average (the refill rate).' })),
  per: Type.Optional(duration('The period of `rate`.', RATE_LIMIT_DEFAULTS.per)),
  burst: Type.Optional(Type.Integer({ minimum: 1, description: 'Most requests allowed at once after a quiet spell (the bucket size). Default: `rate`.' })),
};

export const RateLimitPolicySchema = object(
  {
    ...RateSchema,
    key: Type.Optional(
      Type.Array(KeyPartSchema, {
        minItems: 1,
        default: [...RATE_LIMIT_DEFAULTS.key],
        description: 'What one bucket counts: one or more of client_ip, route, {header}, {cookie}, {jwt_claim}; several parts combine (one bucket per distinct combination).',
      }),
    ),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Most requests of one key in flight at once in this usher process (released when the response ends); more: 429 concurrency_limited.' })),
    dry_run: Type.Optional(Type.Boolean({ default: false, description: 'Only log and count the requests the policy would refuse; let them through.' })),
    store: Type.Optional(Type.String({ minLength: 1, default: 'local', description: 'Where the buckets live: "local" (this process) or the name of a store under `rate_limits.stores` (shared through Redis).' })),
    on_store_error: Type.Optional(
      stringEnum(['fail_open', 'fail_closed'] as const, {
        default: RATE_LIMIT_DEFAULTS.on_store_error,
        description: 'When the store does not answer within its timeout: fail_open lets the request through (subject to `fallback`), fail_closed answers 503 rate_limit_unavailable.',
      }),
    ),
    fallback: Type.Optional(object(RateSchema, { description: 'With a Redis store and fail_open: a limit kept in this process while the store is unreachable.' })),
    headers: Type.Optional(Type.Boolean({ default: true, description: 'Send the RateLimit and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers) on every response, not only on 429.' })),
  },
  { description: 'A rate limit (GCRA: `rate` per `per` with a `burst`) and/or a concurrency limit, per key.' },
);

export const RedisStoreSchema = object(
  {
    ...redisConnectionProps(),
    timeout: Type.Optional(duration('Longest a request waits for the store; then the policy\'s on_store_error applies.', RATE_LIMIT_DEFAULTS.store_timeout)),
    prefix: Type.Optional(Type.String({ default: RATE_LIMIT_DEFAULTS.prefix, description: 'Prefix of every key usher writes (keys expire by themselves).' })),
  },
  { description: 'A Redis (one server by `url`, a Sentinel-managed master by `sentinel`, or a Cluster by `cluster`) shared by every usher that names it: one atomic script call per decision.' },
);

export const RateLimitsSchema = object(
  {
    policies: Type.Optional(
      Type.Record(Type.String({ pattern: NAME_PATTERN }), RateLimitPolicySchema, {
        additionalProperties: false,
        default: {},
        description: 'Named policies; routes name theirs in `rate_limits`, `global` names those for every request.',
        'x-usher-key': 'policy name',
        'x-usher-expected': NAME_EXPECTED,
      }),
    ),
    stores: Type.Optional(
      Type.Record(Type.String({ pattern: NAME_PATTERN }), object({ redis: RedisStoreSchema }, { description: 'A shared store.' }), {
        additionalProperties: false,
        default: {},
        description: 'Named shared stores ("local" is built in).',
        'x-usher-key': 'store name',
        'x-usher-expected': NAME_EXPECTED,
      }),
    ),
    global: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Policies applied to every request of every listener, before routing (keys: client_ip, header).' })),
    connections_per_client: Type.Optional(Type.Integer({ minimum: 1, description: 'Most open connections from one client address; more are closed at once.' })),
    max_keys: Type.Optional(Type.Integer({ minimum: 100, default: RATE_LIMIT_DEFAULTS.max_keys, description: 'Most keys a local policy remembers; idle keys expire first.' })),
  },
  { description: 'Rate limits, concurrency limits and connection limits.' },
);

export const RouteRateLimitsSchema = Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Names of the policies (under `rate_limits.policies`) this route applies; all of them apply.' });

export interface Rate {
  /** Emission interval: ms per request. */
  interval: number;
  burst: number;
  /** As written, for RateLimit-Policy: quota and window in seconds. */
  rate: number;
  per: number; // ms
}

export interface RateLimitPolicy {
  name: string;
  key: KeyPart[];
  rate?: Rate;
  concurrency?: number;
  dry_run: boolean;
  store: string;
  on_store_error: 'fail_open' | 'fail_closed';
  fallback?: Rate;
  headers: boolean;
}

export interface RedisStoreConfig extends RedisConnection {
  name: string;
  timeout: number; // ms
  prefix: string;
}

export interface RateLimitsConfig {
  policies: Record<string, RateLimitPolicy>;
  stores: Record<string, RedisStoreConfig>;
  global: string[];
  connections_per_client?: number;
  max_keys: number;
}

type Input = Static<typeof RateLimitsSchema>;

function rate(r: { rate?: number | undefined; per?: number | string | undefined; burst?: number | undefined }): Rate | undefined {
  if (r.rate === undefined) return undefined;
  const per = parseDuration(r.per ?? RATE_LIMIT_DEFAULTS.per);
  return { interval: per / r.rate, burst: r.burst ?? r.rate, rate: r.rate, per };
}

/** "host:port" or "[v6]:port" (the schema's pattern) to its parts. */

function keyPart(k: Static<typeof KeyPartSchema>): KeyPart {
  if (typeof k === 'string') return { kind: k };
  if ('header' in k) return { kind: 'header', name: k.header.toLowerCase() };
  if ('cookie' in k) return { kind: 'cookie', name: k.cookie };
  return { kind: 'jwt_claim', name: k.jwt_claim };
}

export function normalizeRateLimits(d: Input): RateLimitsConfig {
  const policies = dict<RateLimitPolicy>();
  for (const [name, p] of Object.entries(d.policies ?? {})) {
    const out: RateLimitPolicy = {
      name,
      key: (p.key ?? RATE_LIMIT_DEFAULTS.key).map(keyPart),
      dry_run: p.dry_run ?? false,
      store: p.store ?? 'local',
      on_store_error: p.on_store_error ?? RATE_LIMIT_DEFAULTS.on_store_error,
      headers: p.headers ?? true,
    };
    const r = rate(p);
    if (r !== undefined) out.rate = r;
    if (p.concurrency !== undefined) out.concurrency = p.concurrency;
    const f = p.fallback === undefined ? undefined : rate(p.fallback);
    if (f !== undefined) out.fallback = f;
    policies[name] = out;
  }
  const stores = dict<RedisStoreConfig>();
  for (const [name, s] of Object.entries(d.stores ?? {})) {
    const r = s.redis;
    stores[name] = { name, ...normalizeRedisConnection(r), timeout: parseDuration(r.timeout ?? RATE_LIMIT_DEFAULTS.store_timeout), prefix: r.prefix ?? RATE_LIMIT_DEFAULTS.prefix };
  }
  const out: RateLimitsConfig = { policies, stores, global: [...(d.global ?? [])], max_keys: d.max_keys ?? RATE_LIMIT_DEFAULTS.max_keys };
  if (d.connections_per_client !== undefined) out.connections_per_client = d.connections_per_client;
  return out;
}

/** References between policies, stores, `global` and routes; what a global policy may key on. */
export function checkRateLimits(data: Rec, error: ErrorFn): void {
  const rl = isRec(data.rate_limits) ? data.rate_limits : {};
  const policies = isRec(rl.policies) ? rl.policies : {};
  const stores = isRec(rl.stores) ? rl.stores : {};
  const names = Object.keys(policies);
  const known = (name: unknown, at: Segment[]): Rec | undefined => {
    if (typeof name !== 'string') return undefined;
    if (!(name in policies)) {
      error(at, `no rate limit policy named ${JSON.stringify(name)}`, `defined policies: ${names.join(', ') || '(none; add them under "rate_limits.policies")'}`);
      return undefined;
    }
    return isRec(policies[name]) ? policies[name] : undefined;
  };
  for (const [name, p] of Object.entries(policies)) {
    if (!isRec(p)) continue;
    const at: Segment[] = ['rate_limits', 'policies', name];
    if (p.rate === undefined && p.concurrency === undefined) error(at, 'a policy needs "rate" or "concurrency" (or both)');
    for (const k of ['per', 'burst'] as const) if (p[k] !== undefined && p.rate === undefined) error([...at, k], `"${k}" goes with "rate"`, undefined, 'key');
    const store = p.store;
    if (typeof store === 'string' && store !== 'local' && !(store in stores)) {
      error([...at, 'store'], `no rate limit store named ${JSON.stringify(store)}`, `"local", or a store under "rate_limits.stores": ${Object.keys(stores).join(', ') || '(none)'}`);
    }
    const local = store === undefined || store === 'local';
    if (local && p.fallback !== undefined) error([...at, 'fallback'], '"fallback" applies to a policy with a Redis store', undefined, 'key');
    if (local && p.on_store_error !== undefined) error([...at, 'on_store_error'], '"on_store_error" applies to a policy with a Redis store', undefined, 'key');
    if (!local && p.rate === undefined) error([...at, 'store'], 'a shared store holds rates: this policy has only "concurrency", which is counted per process');
    if (isRec(p.fallback) && p.fallback.rate === undefined) error([...at, 'fallback'], 'a fallback needs "rate"');
    if (p.fallback !== undefined && p.on_store_error === 'fail_closed') error([...at, 'fallback'], '"fallback" applies with on_store_error: fail_open', undefined, 'key');
  }
  for (const [name, s] of Object.entries(stores)) {
    if (isRec(s)) checkRedisConnection(s.redis, ['rate_limits', 'stores', name, 'redis'], error);
  }
  list(rl.global).forEach((name, i) => {
    const p = known(name, ['rate_limits', 'global', i]);
    if (p === undefined) return;
    list(p.key).forEach((k) => {
      const kind = typeof k === 'string' ? k : isRec(k) ? Object.keys(k)[0] : undefined;
      if (kind !== undefined && BEFORE_ROUTING[kind as KeyPart['kind']] === false) {
        error(['rate_limits', 'global', i], `policy ${JSON.stringify(name)} keys on ${kind}, which is known only after routing; a global policy keys on client_ip or a header`, 'attach it to routes instead');
      }
    });
  });
  list(data.routes).forEach((route, r) => {
    if (!isRec(route)) return;
    const jwt = isRec(route.auth) && route.auth.jwt !== undefined;
    list(route.rate_limits).forEach((name, i) => {
      const p = known(name, ['routes', r, 'rate_limits', i]);
      if (p === undefined || jwt) return;
      const claim = list(p.key).find((k) => isRec(k) && typeof k.jwt_claim === 'string') as Rec | undefined;
      if (claim !== undefined) error(['routes', r, 'rate_limits', i], `policy ${JSON.stringify(name)} keys on the JWT claim ${JSON.stringify(claim.jwt_claim)}, and this route has no "auth.jwt" to verify a token`, 'add `auth: { jwt: ... }` to the route, or use a policy with another key');
    });
  });
}
