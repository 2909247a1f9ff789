// The `caches:` section (named stores, shared by the routes that name them) and a route's
// `cache:` (a store name, or a section with the key and policies; false: off): schema parts,
// defaults, normalised types, normalisers and checks. The filter (index.ts) reads CacheRoute;
// the stores are built from CacheStoreConfig (src/cache/registry.ts).
import { Type, type Static } from '@sinclair/typebox';
import { checkProxiedOnly, isRec, list, type ErrorFn, type Rec, type RouteCheck } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { duration, headerName, object, size, stringEnum } from '../../config/schema-kit.js';
import { parseDuration, parseSize } from '../../config/units.js';
import { didYouMean } from '../../config/suggest.js';
import { dict } from '../../util/dict.js';
import { AccessSchema, checkAccessSection, normalizeAccess, type AccessConfig } from '../access/config.js';
import { checkRedisConnection, normalizeRedisConnection, redisConnectionProps, type RedisConnection } from '../../util/redis.js';

const NAME_PATTERN = '^[A-Za-z0-9_.-]+$';
const NAME_EXPECTED = 'letters, digits, "_", "." and "-"';

export const CACHE_DEFAULTS = {
  store: 'memory' as const,
  max_size: '64mb',
  max_object_size: '1mb',
  set_cookie: 'pass' as 'pass' | 'strip',
  collapse: true,
  collapse_timeout: '5s',
  heuristic_fraction: 0.1,
  heuristic_max: '24h',
  stale_if_error: '0s',
  max_variants: 16,
  tag_fields: ['Cache-Tag', 'Surrogate-Key'],
  targeted_fields: ['CDN-Cache-Control'],
  forward_cdn_cache_control: true,
  l2_prefix: 'usher:cache:',
  l2_max_object_size: '64kb',
  l2_timeout: '50ms',
};

const L2Schema = object(
  {
    redis: Type.Union([Type.String({ minLength: 1, description: 'redis://[user:password@]host:port[/db] (or rediss://).' }), object(redisConnectionProps(), { description: 'A connection as the rate-limit stores take it (url, sentinel or cluster, credentials, ioredis options).' })], {
      description: 'The Redis every instance sharing this store names: a URL, or a connection section (url / sentinel / cluster, as `rate_limits.stores.NAME.redis`).',
      'x-usher-expected': 'a redis:// URL or a connection section',
    }),
    prefix: Type.Optional(Type.String({ default: CACHE_DEFAULTS.l2_prefix, description: 'Prefix of the Redis keys and of the purge channel (then the store\'s name): instances share entries when they share prefix and store name.' })),
    max_object_size: Type.Optional(size('Largest response written to Redis (its body); larger ones stay in this instance\'s memory only.', CACHE_DEFAULTS.l2_max_object_size)),
    timeout: Type.Optional(duration('Longest a memory miss waits for Redis; slower (or Redis down) counts as an L2 miss and the request goes upstream.', CACHE_DEFAULTS.l2_timeout)),
  },
  {
    description:
      'A shared second level in Redis (memory stores only): a memory miss looks it up (a hit is kept in memory and answered with Cache-Status detail="l2"); stored responses up to `max_object_size` are written to it in the background, for their freshness and stale lifetime; purges and invalidations delete there and are published to every instance. Redis down: the store serves from memory alone, never an error.',
  },
);

export const CacheStoreSchema = object(
  {
    type: Type.Optional(
      stringEnum(['memory', 'disk'] as const, {
        default: CACHE_DEFAULTS.store,
        description: 'Where responses are kept: memory (this process, lost on restart) or disk (files under `path`, kept across restarts).',
      }),
    ),
    store: Type.Optional(stringEnum(['memory', 'disk'] as const, { description: 'The older spelling of `type`.' })),
    path: Type.Optional(Type.String({ minLength: 1, description: 'The disk store\'s directory (created if missing; relative to the config file). Used by this store only: usher removes files in it that are not whole cache entries.' })),
    max_size: Type.Optional(size('Most bytes the store holds (bodies and fields); the least recently used responses are evicted first.', CACHE_DEFAULTS.max_size)),
    max_object_size: Type.Optional(
      size('Largest response stored: a larger one (by its Content-Length, or once its body passes this size) is sent to the client uncached, and whatever was copied of it is dropped.', CACHE_DEFAULTS.max_object_size),
    ),
    l2: Type.Optional(L2Schema),
  },
  { description: 'A named cache store; routes name it in `cache`.' },
);

export const CachesSchema = Type.Record(Type.String({ pattern: NAME_PATTERN }), CacheStoreSchema, {
  additionalProperties: false,
  description: 'Named HTTP cache stores (RFC 9111 shared caches). A route caches only when it says `cache: NAME` (or a `cache` section naming its store); several routes may share one store.',
  'x-usher-key': 'cache name',
  'x-usher-expected': NAME_EXPECTED,
});

const KeySchema = object(
  {
    headers: Type.Optional(Type.Array(headerName('A request header whose value is part of the key.'), { description: 'Request headers added to the key (their values, as sent).' })),
    cookies: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Cookies whose values are added to the key.' })),
    ignore_query: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Query parameters left out of the key (tracking parameters such as utm_source); the upstream still gets them.' })),
  },
  { description: 'The cache key: always scheme, host (and a non-default port), normalised path and query as routed; these parts are added (or, for the query, removed).' },
);

const RouteCacheFields = object(
  {
    store: Type.String({ pattern: NAME_PATTERN, description: 'The store (under `caches`).' }),
    key: Type.Optional(KeySchema),
    set_cookie: Type.Optional(
      stringEnum(['pass', 'strip'] as const, {
        default: CACHE_DEFAULTS.set_cookie,
        description: 'A response with Set-Cookie: pass (sent to its client, not stored) or strip (stored without its Set-Cookie fields; the client that caused the fill still gets them).',
      }),
    ),
    collapse: Type.Optional(Type.Boolean({ default: CACHE_DEFAULTS.collapse, description: 'Concurrent misses for one key send one request upstream; the others wait for its response (at most `collapse_timeout`).' })),
    collapse_timeout: Type.Optional(duration('Longest a collapsed request waits for the first one\'s response before it goes upstream itself.', CACHE_DEFAULTS.collapse_timeout)),
    heuristic_fraction: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, default: CACHE_DEFAULTS.heuristic_fraction, description: 'Heuristic freshness (RFC 9111 §4.2.2) of a response without explicit freshness but with Last-Modified: this fraction of the time since it was modified.' }),
    ),
    heuristic_max: Type.Optional(duration('The most heuristic freshness a response gets.', CACHE_DEFAULTS.heuristic_max)),
    stale_if_error: Type.Optional(
      duration(
        'How long past its freshness a stored response may still answer when the upstream fails (a 5xx, or no answer at all), whatever the response said (RFC 5861 stale-if-error, as an operator override; the response\'s or request\'s own stale-if-error counts when larger). Never for a response with must-revalidate or proxy-revalidate.',
        CACHE_DEFAULTS.stale_if_error,
      ),
    ),
    tag_fields: Type.Optional(
      Type.Array(headerName('A response field with purge tags.'), {
        default: CACHE_DEFAULTS.tag_fields,
        description:
          'Response fields whose values tag a stored response for purging by tag (POST /cache/purge {"tag": ...}): comma- or space-separated (Cloudflare\'s Cache-Tag, Fastly\'s Surrogate-Key). They are removed from what is stored and from what goes downstream. [] reads none.',
      }),
    ),
    bypass: Type.Optional(
      object(
        {
          headers: Type.Optional(Type.Array(headerName('A request header.'), { description: 'Request headers that bypass the cache when present with a value other than "" and "0".' })),
          cookies: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Cookies that bypass the cache when present with a value other than "" and "0" (a session cookie, say).' })),
          query: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Query parameters that bypass the cache when present with a value other than "" and "0" (?nocache=1).' })),
        },
        {
          description:
            'Requests that go straight upstream: not looked up and their responses not stored (nginx\'s proxy_cache_bypass with proxy_no_cache on the same conditions). Cache-Status says fwd=bypass and which condition; an unsafe method still invalidates.',
        },
      ),
    ),
    targeted_fields: Type.Optional(
      Type.Array(headerName('A targeted cache-control field.'), {
        default: CACHE_DEFAULTS.targeted_fields,
        description:
          'The targeted cache-control fields this cache obeys (RFC 9213), most specific first, e.g. [Usher-Cache-Control, CDN-Cache-Control]: the first one in a response with a valid, non-empty value (a Structured Fields dictionary of directives) decides what is stored and for how long, and Cache-Control and Expires are then ignored by this cache (they still go downstream). They are removed from what is stored and sent downstream, except CDN-Cache-Control while `forward_cdn_cache_control` (a CDN further downstream may use it, RFC 9213 §3). [] obeys Cache-Control only.',
      }),
    ),
    forward_cdn_cache_control: Type.Optional(
      Type.Boolean({
        default: CACHE_DEFAULTS.forward_cdn_cache_control,
        description: 'Pass CDN-Cache-Control on downstream (and keep it with stored responses) even when this cache obeys it, as RFC 9213 §3 expects of a CDN; false removes it.',
      }),
    ),
    purge: Type.Optional(
      object(AccessSchema.properties, {
        description:
          'Accept the PURGE method on this route from these clients (an access list, as `access`): a PURGE removes every stored variant of its URL\'s key from the route\'s store and is answered 200 with {"purged": N} (0 when nothing was stored); from any other client, 403 access_denied. Without it PURGE is proxied like any other method.',
      }),
    ),
  },
  { description: 'Cache this route\'s responses in a store (RFC 9111 shared cache).' },
);

export const RouteCacheSchema = Type.Union([Type.String({ pattern: NAME_PATTERN }), RouteCacheFields, Type.Literal(false)], {
  description: `${RouteCacheFields.description} A store name (under \`caches\`), a section, or false (no caching).`,
  'x-usher-expected': 'a cache name, a cache section or false',
});

export type CachesInput = Static<typeof CachesSchema>;
export type RouteCacheInput = Static<typeof RouteCacheSchema>;

/** A memory store's shared second level in Redis (src/cache/l2.ts). */
export interface L2Config extends RedisConnection {
  prefix: string;
  max_object_size: number; // bytes
  timeout: number; // ms
}

export interface CacheStoreConfig {
  name: string;
  store: 'memory' | 'disk';
  /** The disk store's directory, absolute (undefined for memory). */
  path: string | undefined;
  max_size: number; // bytes
  max_object_size: number; // bytes
  /** The shared second level (memory stores only). */
  l2: L2Config | undefined;
}

export interface CacheRoute {
  store: string;
  key: { headers: string[]; cookies: string[]; ignore_query: string[] };
  set_cookie: 'pass' | 'strip';
  collapse: boolean;
  collapse_timeout: number; // ms
  heuristic_fraction: number;
  heuristic_max: number; // seconds
  stale_if_error: number; // seconds
  max_variants: number;
  /** Lower case. */
  tag_fields: string[];
  /** Undefined when no condition is configured. */
  bypass: { headers: string[]; cookies: string[]; query: string[] } | undefined;
  /** Lower case, in priority order. */
  targeted_fields: string[];
  forward_cdn_cache_control: boolean;
  purge: AccessConfig | undefined;
}

export function normalizeCaches(input: CachesInput, filePath: (p: string) => string): Record<string, CacheStoreConfig> {
  const out = dict<CacheStoreConfig>();
  for (const [name, c] of Object.entries(input)) {
    const store = c.type ?? c.store ?? CACHE_DEFAULTS.store;
    out[name] = {
      name,
      store,
      path: store === 'disk' && c.path !== undefined ? filePath(c.path) : undefined,
      max_size: parseSize(c.max_size ?? CACHE_DEFAULTS.max_size),
      max_object_size: parseSize(c.max_object_size ?? CACHE_DEFAULTS.max_object_size),
      l2: c.l2 === undefined ? undefined : normalizeL2(c.l2),
    };
  }
  return out;
}

function normalizeL2(l: NonNullable<CachesInput[string]['l2']>): L2Config {
  const conn = typeof l.redis === 'string' ? { url: l.redis } : l.redis;
  return {
    ...normalizeRedisConnection(conn),
    prefix: l.prefix ?? CACHE_DEFAULTS.l2_prefix,
    max_object_size: parseSize(l.max_object_size ?? CACHE_DEFAULTS.l2_max_object_size),
    timeout: parseDuration(l.timeout ?? CACHE_DEFAULTS.l2_timeout),
  };
}

export function normalizeRouteCache(input: RouteCacheInput | undefined): CacheRoute | undefined {
  if (input === undefined || input === false) return undefined;
  const s = typeof input === 'string' ? { store: input } : input;
  const d = CACHE_DEFAULTS;
  return {
    store: s.store,
    key: {
      headers: (s.key?.headers ?? []).map((h) => h.toLowerCase()),
      cookies: [...(s.key?.cookies ?? [])],
      ignore_query: [...(s.key?.ignore_query ?? [])],
    },
    set_cookie: s.set_cookie ?? d.set_cookie,
    collapse: s.collapse ?? d.collapse,
    collapse_timeout: parseDuration(s.collapse_timeout ?? d.collapse_timeout),
    heuristic_fraction: s.heuristic_fraction ?? d.heuristic_fraction,
    heuristic_max: Math.floor(parseDuration(s.heuristic_max ?? d.heuristic_max) / 1000),
    stale_if_error: Math.floor(parseDuration(s.stale_if_error ?? d.stale_if_error) / 1000),
    max_variants: d.max_variants,
    tag_fields: (s.tag_fields ?? d.tag_fields).map((f) => f.toLowerCase()),
    bypass:
      (s.bypass?.headers?.length ?? 0) + (s.bypass?.cookies?.length ?? 0) + (s.bypass?.query?.length ?? 0) === 0
        ? undefined
        : { headers: (s.bypass!.headers ?? []).map((h) => h.toLowerCase()), cookies: [...(s.bypass!.cookies ?? [])], query: [...(s.bypass!.query ?? [])] },
    targeted_fields: (s.targeted_fields ?? d.targeted_fields).map((f) => f.toLowerCase()),
    forward_cdn_cache_control: s.forward_cdn_cache_control ?? d.forward_cdn_cache_control,
    purge: s.purge === undefined ? undefined : normalizeAccess(s.purge),
  };
}

/** Route references to stores, and each disk store's own directory (check.ts, with the whole config as written). */
export function checkCaches(data: Rec, error: ErrorFn): void {
  const caches = isRec(data.caches) ? data.caches : {};
  const names = Object.keys(caches);
  const paths = new Map<string, string>();
  for (const [name, c] of Object.entries(caches)) {
    if (!isRec(c)) continue;
    if (c.type !== undefined && c.store !== undefined && c.type !== c.store) error(['caches', name, 'store'], `"store" is the older spelling of "type" and says ${JSON.stringify(c.store)} where "type" says ${JSON.stringify(c.type)}`, 'give "type" only');
    const type = c.type ?? c.store ?? CACHE_DEFAULTS.store;
    if (type === 'disk') {
      if (typeof c.path !== 'string') {
        error(['caches', name], 'a disk store needs "path" (its directory)', 'add path: /var/cache/usher/NAME');
        continue;
      }
      const other = paths.get(c.path);
      if (other !== undefined) error(['caches', name, 'path'], `the directory ${JSON.stringify(c.path)} is already the store ${JSON.stringify(other)}'s`, 'give each disk store a directory of its own');
      else paths.set(c.path, name);
    } else if (c.path !== undefined) error(['caches', name, 'path'], 'only a disk store has a path', 'add type: disk, or remove path');
    if (c.l2 !== undefined && type === 'disk') error(['caches', name, 'l2'], 'a shared L2 goes with a memory store (a disk store keeps its responses across restarts already)', 'remove l2, or use type: memory', 'key');
    if (isRec(c.l2) && isRec(c.l2.redis)) checkRedisConnection(c.l2.redis, ['caches', name, 'l2', 'redis'], error);
    if (isRec(c.l2) && typeof c.l2.redis === 'string' && !/^rediss?:\/\//.test(c.l2.redis)) error(['caches', name, 'l2', 'redis'], `${JSON.stringify(c.l2.redis)} is not a Redis URL`, 'redis://host:port (or rediss:// for TLS)');
  }
  list(data.routes).forEach((route, r) => {
    if (!isRec(route)) return;
    const c = route.cache;
    const name = typeof c === 'string' ? c : isRec(c) && typeof c.store === 'string' ? c.store : undefined;
    if (name === undefined || name in caches) return;
    const at: Segment[] = typeof c === 'string' ? ['routes', r, 'cache'] : ['routes', r, 'cache', 'store'];
    error(at, `no cache named ${JSON.stringify(name)}`, didYouMean(name, names) ?? `defined caches: ${names.join(', ') || '(none; add them under "caches")'}`);
  });
}

export const checkCache: RouteCheck = (route, path, { error }) => {
  if (route.cache === false || route.cache === undefined) return;
  checkProxiedOnly(route, path, 'cache', error);
  if (isRec(route.cache)) checkAccessSection(route.cache.purge, [...path, 'cache', 'purge'], error);
};
