// Valid user config (snake_case, units as written) → UsherConfig (defaults applied, ms, bytes,
// names resolved), deep-frozen. Runs only after the schema and the semantic checks passed, so
// every parse here succeeds; a failure is a bug in the checks and throws.
import { normalizeAdmin } from '../admin/config.js';
import { normalizeTracing } from '../observability/tracing/config.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseListenAddress, parseTrustedProxy, type Parsed } from './address.js';
import { normalizeRouteActions } from './normalize-routing.js';
import { normalizeCaches } from '../filters/cache/config.js';
import { normalizeRateLimits } from '../filters/rate-limit/config.js';
import { normalizeWaf } from '../filters/waf/config.js';
import { normalizeMatch } from '../router/config.js';
import type { Locator, Segment } from './issues.js';
import { DEFAULTS, type ConfigInput } from './schema.js';
import { normalizeAcme, normalizeListenerTls, normalizeUpstreamTls, redirectPort } from '../tls/config/normalize.js';
import { normalizeUpstream } from '../upstream/config/normalize.js';
import { normalizeAccess } from '../filters/access/config.js';
import { normalizeSecurityHeaders } from '../filters/security-headers/config.js';
import type { Http2Settings, ListenerConfig, RouteConfig, SourceLocation, UpstreamConfig, UsherConfig } from './types.js';
import { parseDuration, parseSize } from './units.js';
import { dict } from '../util/dict.js';
import { normalizeDrain } from '../server/drain/config.js';

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
    if (l.access !== undefined) out.access = normalizeAccess(l.access);
    if (l.security_headers !== undefined) out.security_headers = normalizeSecurityHeaders(l.security_headers);
    return out;
  });

  const upstreams = dict<UpstreamConfig>();
  for (const [name, u] of Object.entries(input.upstreams ?? {})) {
    const upstream = normalizeUpstream(name, u, source(['upstreams', name], 'key'));
    if (u.tls) upstream.tls = normalizeUpstreamTls(u.tls, filePath);
    upstreams[name] = upstream;
  }

  const routes = (input.routes ?? []).map((r, index) => normalizeRoute(r, index, source(['routes', index], 'value'), input, filePath));

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
      access: {
        format: input.log?.access_log_format ?? DEFAULTS.log.access_log_format,
        file: input.log?.access_log_file === undefined ? null : filePath(input.log.access_log_file),
        buffer: parseSize(input.log?.access_log_buffer ?? DEFAULTS.log.access_log_buffer),
        sample: input.log?.access_log_sample ?? DEFAULTS.log.access_log_sample,
      },
    },
    routing: { encoded_slashes: input.routing?.encoded_slashes ?? DEFAULTS.routing.encoded_slashes },
    upgrade: {
      protocols: unique((input.upgrade?.protocols ?? DEFAULTS.upgrade.protocols).map((p) => p.toLowerCase())),
      idle_timeout: parseDuration(input.upgrade?.idle_timeout ?? DEFAULTS.upgrade.idle_timeout),
    },
    workers: input.workers ?? DEFAULTS.workers,
    workers_mechanism: input.workers_mechanism ?? DEFAULTS.workers_mechanism,
    file: ctx.file,
  };
  if (input.acme) config.acme = normalizeAcme(input.acme, filePath);
  if (input.rate_limits) config.rate_limits = normalizeRateLimits(input.rate_limits);
  if (input.caches) config.caches = normalizeCaches(input.caches, filePath);
  if (input.waf) config.waf = normalizeWaf(input.waf, filePath);
  if (input.admin) config.admin = normalizeAdmin(input.admin);
  if (input.tracing) config.tracing = normalizeTracing(input.tracing);
  return deepFreeze(config);
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

function normalizeRoute(r: RouteInput, index: number, source: SourceLocation, top: ConfigInput, filePath: (p: string) => string): RouteConfig {
  const route: RouteConfig = {
    name: r.name ?? `routes[${index}]`,
    index,
    match: normalizeMatch(r.match),
    source,
    ...normalizeRouteActions(r, top, filePath),
    drain: normalizeDrain(r.drain),
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
