// Valid user config (snake_case, units as written) → UsherConfig (defaults applied, ms, bytes,
// names resolved), deep-frozen. Runs only after the schema and the semantic checks passed, so
// every parse here succeeds; a failure is a bug in the checks and throws.
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseListenAddress, parseServerUrl, parseTrustedProxy, type Parsed } from './address.js';
import { normalizeRouteActions } from './normalize-routing.js';
import { normalizeMatch } from '../router/config.js';
import type { Locator, Segment } from './issues.js';
import { DEFAULTS, type ConfigInput } from './schema.js';
import { normalizeAcme, normalizeListenerTls, normalizeUpstreamTls, redirectPort } from '../tls/config/normalize.js';
import type { HealthCheckConfig, Http2Settings, ListenerConfig, OutlierConfig, RetryConfig, RouteConfig, ServerConfig, SourceLocation, UpstreamConfig, UsherConfig } from './types.js';
import { parseDuration, parseSize } from './units.js';
import { dict } from '../util/dict.js';

type UpstreamInput = NonNullable<ConfigInput['upstreams']>[string];
type RouteInput = NonNullable<ConfigInput['routes']>[number];

function must<T>(r: Parsed<T>): T {
  if (!r.ok) throw new Error(`usher config: unchecked invalid value: ${r.message}`);
  return r;
}

export interface NormalizeContext {
  file: string;
  locate: Locator;
  /** Directory that relative file paths (TLS certificates) are resolved against; none: kept as written. */
  baseDir?: string | undefined;
}

export function normalize(input: ConfigInput, ctx: NormalizeContext): UsherConfig {
  const source = (path: Segment[], at: 'key' | 'value'): SourceLocation => {
    // Without positions (JS configs), line and column are 0: "unknown".
    const pos = ctx.locate(path, at);
    return { file: ctx.file, line: pos?.line ?? 0, column: pos?.column ?? 0 };
  };
  const filePath = (p: string) => (ctx.baseDir === undefined || isAbsolute(p) ? p : resolve(ctx.baseDir, p));

  const listeners = input.listeners.map((l): ListenerConfig => {
    const { host, port } = must(parseListenAddress(l.address));
    const out: ListenerConfig = { address: String(l.address), host, port };
    if (l.tls) out.tls = normalizeListenerTls(l.tls, filePath);
    const redirect = redirectPort(l.redirect_https);
    if (redirect !== undefined) out.redirect_https = redirect;
    if (l.http2) out.http2 = normalizeHttp2(l.http2);
    return out;
  });

  const upstreams = dict<UpstreamConfig>();
  for (const [name, u] of Object.entries(input.upstreams ?? {})) {
    const upstream = normalizeUpstream(name, u, source(['upstreams', name], 'key'));
    if (u.tls) upstream.tls = normalizeUpstreamTls(u.tls, filePath);
    upstreams[name] = upstream;
  }

  const routes = (input.routes ?? []).map((r, index) => normalizeRoute(r, index, source(['routes', index], 'value')));

  const t = input.timeouts ?? {};
  const l = input.limits ?? {};
  const p = input.proxy ?? {};
  const body = l.body === undefined ? DEFAULTS.limits.body : l.body;
  const config: UsherConfig = {
    listeners,
    upstreams,
    routes,
    timeouts: {
      request_header: parseDuration(t.request_header ?? DEFAULTS.timeouts.request_header),
      body_idle: parseDuration(t.body_idle ?? DEFAULTS.timeouts.body_idle),
      keep_alive: parseDuration(t.keep_alive ?? DEFAULTS.timeouts.keep_alive),
      graceful_shutdown: parseDuration(t.graceful_shutdown ?? DEFAULTS.timeouts.graceful_shutdown),
    },
    limits: {
      request_line: parseSize(l.request_line ?? DEFAULTS.limits.request_line),
      header_size: parseSize(l.header_size ?? DEFAULTS.limits.header_size),
      header_count: l.header_count ?? DEFAULTS.limits.header_count,
      body: body === null ? null : parseSize(body),
    },
    proxy: {
      trusted_proxies: (p.trusted_proxies ?? DEFAULTS.proxy.trusted_proxies).map((c) => must(parseTrustedProxy(c)).cidr),
      hide_headers: unique((p.hide_headers ?? DEFAULTS.proxy.hide_headers).map((h) => h.toLowerCase())),
      via: p.via === undefined ? DEFAULTS.proxy.via : p.via,
      drop_underscore_headers: p.drop_underscore_headers ?? DEFAULTS.proxy.drop_underscore_headers,
      request_id_header: (p.request_id_header ?? DEFAULTS.proxy.request_id_header).toLowerCase(),
    },
    log: {
      level: input.log?.level ?? DEFAULTS.log.level,
      access_log: input.log?.access_log ?? DEFAULTS.log.access_log,
    },
    routing: { encoded_slashes: input.routing?.encoded_slashes ?? DEFAULTS.routing.encoded_slashes },
    upgrade: {
      protocols: unique((input.upgrade?.protocols ?? DEFAULTS.upgrade.protocols).map((p) => p.toLowerCase())),
      idle_timeout: parseDuration(input.upgrade?.idle_timeout ?? DEFAULTS.upgrade.idle_timeout),
    },
    file: ctx.file,
  };
  if (input.acme) config.acme = normalizeAcme(input.acme, filePath);
  return deepFreeze(config);
}

function normalizeUpstream(name: string, u: UpstreamInput, source: SourceLocation): UpstreamConfig {
  const servers = u.servers.map((s): ServerConfig => {
    const url = typeof s === 'string' ? s : s.url;
    const weight = typeof s === 'string' ? DEFAULTS.server.weight : (s.weight ?? DEFAULTS.server.weight);
    const { origin, authority } = must(parseServerUrl(url));
    const backup = typeof s === 'string' ? DEFAULTS.server.backup : (s.backup ?? DEFAULTS.server.backup);
    const priority = typeof s === 'string' ? DEFAULTS.server.priority : (s.priority ?? DEFAULTS.server.priority);
    const max_requests = typeof s === 'string' ? null : (s.max_requests ?? null);
    return { url, origin, authority, weight, backup, priority, max_requests };
  });
  const pool = u.pool ?? {};
  const t = u.timeouts ?? {};
  return {
    name,
    servers,
    balance: u.balance ?? DEFAULTS.upstream.balance,
    protocol: u.protocol ?? 'http1',
    hash: { key: u.hash?.key ?? DEFAULTS.upstream.hash.key },
    sticky: {
      cookie: u.sticky?.cookie ?? DEFAULTS.upstream.sticky.cookie,
      secret: u.sticky?.secret ?? null,
      max_age: u.sticky?.max_age === undefined ? null : parseDuration(u.sticky.max_age),
    },
    panic_threshold: u.panic_threshold ?? DEFAULTS.upstream.panic_threshold,
    slow_start: parseDuration(u.slow_start ?? DEFAULTS.upstream.slow_start),
    health_check: u.health_check === undefined ? null : normalizeHealthCheck(u.health_check),
    outlier_detection: u.outlier_detection?.enabled === false ? null : normalizeOutlier(u.outlier_detection ?? {}),
    retry: normalizeRetry(u.retry ?? {}),
    dns:
      u.dns === undefined
        ? null
        : {
            refresh: parseDuration(u.dns.refresh ?? DEFAULTS.upstream.dns.refresh),
            family: u.dns.family ?? DEFAULTS.upstream.dns.family,
            servers: [...(u.dns.servers ?? DEFAULTS.upstream.dns.servers)],
            srv: u.dns.srv ?? DEFAULTS.upstream.dns.srv,
          },
    circuit_breaker:
      u.circuit_breaker === undefined
        ? null
        : {
            max_requests: u.circuit_breaker.max_requests ?? null,
            max_pending: u.circuit_breaker.max_pending ?? DEFAULTS.upstream.circuit_breaker.max_pending,
            queue_timeout: parseDuration(u.circuit_breaker.queue_timeout ?? DEFAULTS.upstream.circuit_breaker.queue_timeout),
          },
    host_header: u.host_header ?? DEFAULTS.upstream.host_header,
    pool: {
      max_connections: pool.max_connections ?? DEFAULTS.upstream.pool.max_connections,
      keep_alive_timeout: parseDuration(pool.keep_alive_timeout ?? DEFAULTS.upstream.pool.keep_alive_timeout),
    },
    timeouts: {
      connect: parseDuration(t.connect ?? DEFAULTS.upstream.timeouts.connect),
      response_header: parseDuration(t.response_header ?? DEFAULTS.upstream.timeouts.response_header),
      body_idle: parseDuration(t.body_idle ?? DEFAULTS.upstream.timeouts.body_idle),
    },
    source,
  };
}

function normalizeHealthCheck(h: NonNullable<UpstreamInput['health_check']>): HealthCheckConfig {
  const d = DEFAULTS.upstream.health_check;
  return {
    type: h.type ?? d.type,
    path: h.path ?? d.path,
    method: h.method ?? d.method,
    host: h.host ?? null,
    expect_status: (h.expect_status ?? d.expect_status).map(statusRange),
    expect_body: h.expect_body ?? null,
    interval: parseDuration(h.interval ?? d.interval),
    jitter: h.jitter ?? d.jitter,
    timeout: parseDuration(h.timeout ?? d.timeout),
    rise: h.rise ?? d.rise,
    fall: h.fall ?? d.fall,
  };
}

/** 204 → [204, 204]; "200-399" → [200, 399]. */
export function statusRange(s: number | string): [number, number] {
  if (typeof s === 'number') return [s, s];
  const [lo, hi] = s.split('-');
  return [Number(lo), Number(hi ?? lo)];
}

function normalizeRetry(r: NonNullable<UpstreamInput['retry']>): RetryConfig {
  const d = DEFAULTS.upstream.retry;
  return {
    attempts: r.attempts ?? d.attempts,
    on: unique((r.on ?? d.on) as (number | 'reset')[]),
    per_try_timeout: r.per_try_timeout === null ? null : parseDuration(r.per_try_timeout ?? d.per_try_timeout),
    backoff: { base: parseDuration(r.backoff?.base ?? d.backoff.base), max: parseDuration(r.backoff?.max ?? d.backoff.max) },
    budget: { percent: r.budget?.percent ?? d.budget.percent, min_retries: r.budget?.min_retries ?? d.budget.min_retries },
    buffer_body: parseSize(r.buffer_body ?? d.buffer_body),
  };
}

function normalizeOutlier(o: NonNullable<UpstreamInput['outlier_detection']>): OutlierConfig {
  const d = DEFAULTS.upstream.outlier_detection;
  return {
    consecutive_5xx: o.consecutive_5xx ?? d.consecutive_5xx,
    consecutive_connect_failures: o.consecutive_connect_failures ?? d.consecutive_connect_failures,
    base_ejection_time: parseDuration(o.base_ejection_time ?? d.base_ejection_time),
    max_ejection_time: parseDuration(o.max_ejection_time ?? d.max_ejection_time),
    max_ejection_percent: o.max_ejection_percent ?? d.max_ejection_percent,
    readmit_on_check: o.readmit_on_check ?? d.readmit_on_check,
  };
}

function normalizeHttp2(h: NonNullable<ConfigInput['listeners'][number]['http2']>): Http2Settings {
  const d = DEFAULTS.http2;
  return {
    max_concurrent_streams: h.max_concurrent_streams ?? d.max_concurrent_streams,
    max_header_list_size: parseSize(h.max_header_list_size ?? d.max_header_list_size),
    max_session_memory: parseSize(h.max_session_memory ?? d.max_session_memory),
    max_resets: h.max_resets ?? d.max_resets,
    reset_window: parseDuration(h.reset_window ?? d.reset_window),
  };
}

function normalizeRoute(r: RouteInput, index: number, source: SourceLocation): RouteConfig {
  const route: RouteConfig = {
    name: r.name ?? `routes[${index}]`,
    index,
    match: normalizeMatch(r.match),
    source,
    ...normalizeRouteActions(r),
  };
  if (r.upstream !== undefined) route.upstream = r.upstream;
  if (r.respond !== undefined) {
    route.respond = {
      status: r.respond.status ?? DEFAULTS.respond.status,
      body: r.respond.body ?? DEFAULTS.respond.body,
      headers: dict(Object.entries(r.respond.headers ?? DEFAULTS.respond.headers)),
    };
  }
  return route;
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** Freezes `value` and everything reachable from it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The directory relative paths in a config file are resolved against, or undefined for "<embedded>"-like names. */
export function baseDirOf(file: string): string | undefined {
  return file.startsWith('<') ? undefined : dirname(resolve(file));
}
