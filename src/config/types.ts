// The normalized, validated and frozen configuration that the rest of usher consumes.
// The loader (load.ts) turns a YAML/JSON/JS file into this shape: every default applied,
// durations in milliseconds, sizes in bytes, names resolved. Nothing downstream of the loader
// re-validates or merges options per request.
import type { AdminConfig } from '../admin/config.js';
import type { TracingConfig } from '../observability/tracing/config.js';
import type { ConfigIssue, SourceLocation } from './issues.js';
import type { RouteMatch } from '../router/config.js';
import type { AcmeConfig, ListenerTlsConfig } from '../tls/config/types.js';
import type { DrainPolicy } from '../server/drain/config.js';
import type { UpstreamConfig } from '../upstream/config/types.js';
import type { AccessConfig } from '../filters/access/config.js';
import type { AuthConfig } from '../filters/auth/config.js';
import type { CacheRoute, CacheStoreConfig } from '../filters/cache/config.js';
import type { RouteWaf, WafConfig } from '../filters/waf/config.js';
import type { CompressConfig } from '../filters/compress/config.js';
import type { CorsConfig } from '../filters/cors/config.js';
import type { SecurityHeaders } from '../filters/security-headers/config.js';
import type { HeaderRules } from '../filters/headers/config.js';
import type { MirrorAction } from '../filters/mirror/config.js';
import type { RateLimitsConfig } from '../filters/rate-limit/config.js';
import type { RedirectAction } from '../filters/redirect/config.js';
import type { RewriteAction } from '../filters/rewrite/config.js';
import type { SplitTarget, StickyKey } from '../filters/split/config.js';
export type { ConfigIssue, SourceLocation } from './issues.js';
// The normalised matchers of a route live beside the router (src/router/config.ts), the TLS
// settings beside the TLS code (src/tls/config/), the upstreams beside the upstream code
// (src/upstream/config/), the sections of the route filters beside the filters
// (src/filters/<name>/config.ts).
export type { FieldCondition, RouteMatch } from '../router/config.js';
export type { AcmeConfig, CertificateFiles, ListenerTlsConfig, UpstreamTlsConfig } from '../tls/config/types.js';
export type { CircuitBreakerConfig, DnsConfig, HealthCheckConfig, OutlierConfig, RetryConfig, ServerConfig, UpstreamConfig } from '../upstream/config/types.js';
export type { AccessConfig } from '../filters/access/config.js';
export type { AuthConfig, BasicAuthConfig, ForwardAuthConfig, JwtAuthConfig } from '../filters/auth/config.js';
export type { CacheRoute, CacheStoreConfig } from '../filters/cache/config.js';
export type { RouteWaf, WafConfig } from '../filters/waf/config.js';
export type { CompressConfig } from '../filters/compress/config.js';
export type { CorsConfig } from '../filters/cors/config.js';
export type { SecurityHeaders } from '../filters/security-headers/config.js';
export type { HeaderRules } from '../filters/headers/config.js';
export type { MirrorAction } from '../filters/mirror/config.js';
export type { RateLimitPolicy, RateLimitsConfig, RedisStoreConfig } from '../filters/rate-limit/config.js';
export type { RedirectAction } from '../filters/redirect/config.js';
export type { RewriteAction } from '../filters/rewrite/config.js';
export type { SplitTarget, StickyKey } from '../filters/split/config.js';

export interface ListenerConfig {
  /** As written, e.g. "127.0.0.1:8080" or "[::1]:8080" or ":8080". */
  address: string;
  host: string; // "127.0.0.1", "::1", "0.0.0.0" (":8080" means all interfaces: "0.0.0.0")
  port: number; // 0..65535 (0: ephemeral, used by tests)
  /** TLS termination: certificates by SNI, versions, ciphers, HSTS, client certificates. */
  tls?: ListenerTlsConfig;
  /** Plain listeners only: redirect to https on this port (443: no port in the URL). */
  redirect_https?: number;
  /** HTTP/2 next to HTTP/1.1: ALPN with tls, h2c prior knowledge without. Absent: HTTP/1.1 only. */
  http2?: Http2Settings;
  /** IP access list: judged at accept (or per request from a trusted proxy). */
  access?: AccessConfig;
  /** Security response headers on every response of the listener (a route's own replace them). */
  security_headers?: SecurityHeaders;
}

export interface Http2Settings {
  max_concurrent_streams: number; // default 100
  max_header_list_size: number; // bytes, default 32768
  max_session_memory: number; // bytes, default 10 MiB
  max_resets: number; // default 200 per reset_window
  reset_window: number; // ms, default 10000
}

export interface UpgradeSettings {
  /** Lower-case protocol tokens allowed in Upgrade. Default ["websocket"]. */
  protocols: string[];
  idle_timeout: number; // ms, default 600000
}

export interface RespondAction {
  status: number; // 100..599, default 200
  body: string; // default ""
  headers: Record<string, string>; // default {}; null-prototype (src/util/dict.ts)
}

export interface RouteConfig {
  /** "routes[2]" unless the route has a name. */
  name: string;
  index: number; // position in the file
  match: RouteMatch; // {hosts: []} when the route had no match
  /** Exactly one of upstream / respond is set. */
  upstream?: string;
  respond?: RespondAction;
  source: SourceLocation;
  /** Higher first; default 0. */
  priority?: number;
  split?: SplitTarget[];
  sticky_key?: StickyKey;
  redirect?: RedirectAction;
  rewrite?: RewriteAction;
  request_headers?: HeaderRules;
  response_headers?: HeaderRules;
  mirror?: MirrorAction;
  access?: AccessConfig;
  /** Authentication: one of basic, jwt, forward. */
  auth?: AuthConfig;
  cors?: CorsConfig;
  security_headers?: SecurityHeaders;
  /** Names of policies under rate_limits.policies, all applied. */
  rate_limits?: string[];
  /** The effective compression of a proxied route (its own fields over the top level's); absent: off. */
  compress?: CompressConfig;
  /** The route's cache (its store and policies); absent: not cached. */
  cache?: CacheRoute;
  /** The route's WAF (the top-level rule set with its exclusions and mode); absent: off. */
  waf?: RouteWaf;
  /** What a reload that changes or removes the route does to its long-lived connections (set by normalize; absent: the defaults). */
  drain?: DrainPolicy;
}

export interface DownstreamTimeouts {
  request_header: number; // ms, default 10000: whole request head must arrive (slowloris) → 408
  body_idle: number; // ms, default 30000: max gap between request body chunks → 408
  keep_alive: number; // ms, default 5000: idle keep-alive connection between requests
  graceful_shutdown: number; // ms, default 10000: SIGTERM drain period
}

export interface Limits {
  request_line: number; // bytes, default 8192 → 414
  header_size: number; // bytes, default 16384 (whole head) → 431
  header_count: number; // default 100 → 431
  body: number | null; // bytes, default null (unlimited) → 413
}

export interface ProxySettings {
  /** CIDRs (IPv4/IPv6) whose X-Forwarded-*, Forwarded and X-Request-Id are trusted. Default []. */
  trusted_proxies: string[];
  /** Response header names (lower case) removed from upstream responses. Default ["server", "x-powered-by"]. */
  hide_headers: string[];
  /** Value of the pseudonym in Via ("1.1 usher"); null disables Via. Default "usher". */
  via: string | null;
  /** Drop request header names containing "_" (nginx's default). Default true. */
  drop_underscore_headers: boolean;
  /** Header carrying the request id. Default "x-request-id". */
  request_id_header: string;
}

export interface LogSettings {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; // default "info"
  /** One line per request. Default false (as nginx/haproxy benchmarks run). */
  access_log: boolean;
  /** Where and how (used when access_log is on). */
  access: AccessLogSettings;
}

export interface AccessLogSettings {
  /** "json", "combined", "common" or a template of {fields}. Default "json". */
  format: string;
  /** An absolute path, or null for stdout (default). */
  file: string | null;
  /** Bytes held while writes lag or fail; beyond it lines are dropped and counted. Default 4 MiB. */
  buffer: number;
  /** Share (0-1) of successful requests written; the others always are. Default 1. */
  sample: number;
}

export interface UsherConfig {
  listeners: ListenerConfig[]; // at least one
  /** Null-prototype: a name such as "__proto__" is only a name (src/util/dict.ts). */
  upstreams: Record<string, UpstreamConfig>; // may be empty when all routes respond
  routes: RouteConfig[]; // may be empty (every request: 404 no_route)
  timeouts: DownstreamTimeouts;
  limits: Limits;
  proxy: ProxySettings;
  log: LogSettings;
  routing: RoutingSettings;
  upgrade: UpgradeSettings;
  /** Rate-limit policies, stores, global policies, connection limit; absent when not configured. */
  rate_limits?: RateLimitsConfig;
  /** Named cache stores; absent when not configured. */
  caches?: Record<string, CacheStoreConfig>;
  /** The WAF's rule set and settings; absent when not configured. */
  waf?: WafConfig;
  /** Automatic certificates; absent when not configured. */
  acme?: AcmeConfig;
  /** The admin listener; absent when not configured. */
  admin?: AdminConfig;
  /** Tracing (W3C Trace Context, OTLP export); absent when not configured. */
  tracing?: TracingConfig;
  /** Worker processes of `usher serve` (src/server/workers/): "auto" (one per CPU) or a count. */
  workers: 'auto' | number;
  /** How the workers share a listener's port (src/server/workers/mechanism.ts). */
  workers_mechanism: 'auto' | 'reuse_port' | 'cluster';
  /** The file it came from ("<embedded>" for the built-in demo). */
  file: string;
}

export type LoadResult =
  | { ok: true; config: UsherConfig; warnings: ConfigIssue[] }
  | { ok: false; errors: ConfigIssue[]; warnings: ConfigIssue[] };

export interface RoutingSettings {
  /** %2F / %5C in a path: "reject" (400 unsafe_path, default) or "keep" (an ordinary character). */
  encoded_slashes: 'reject' | 'keep';
}
