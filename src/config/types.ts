// The normalized, validated and frozen configuration that the rest of usher consumes.
// The loader (load.ts) turns a YAML/JSON/JS file into this shape: every default applied,
// durations in milliseconds, sizes in bytes, names resolved. Nothing downstream of the loader
// re-validates or merges options per request.
import type { ConfigIssue } from './issues.js';
import type { BalancerName } from '../upstream/balancers/names.js';
import type { RouteMatch } from '../router/config.js';
import type { AcmeConfig, ListenerTlsConfig, UpstreamTlsConfig } from '../tls/config/types.js';
import type { HeaderRules } from '../filters/headers/config.js';
import type { MirrorAction } from '../filters/mirror/config.js';
import type { RedirectAction } from '../filters/redirect/config.js';
import type { RewriteAction } from '../filters/rewrite/config.js';
import type { SplitTarget, StickyKey } from '../filters/split/config.js';
export type { ConfigIssue } from './issues.js';
// The normalised matchers of a route live beside the router (src/router/config.ts), the TLS
// settings beside the TLS code (src/tls/config/), the sections of the route filters beside the
// filters (src/filters/<name>/config.ts).
export type { FieldCondition, RouteMatch } from '../router/config.js';
export type { AcmeConfig, CertificateFiles, ListenerTlsConfig, UpstreamTlsConfig } from '../tls/config/types.js';
export type { HeaderRules } from '../filters/headers/config.js';
export type { MirrorAction } from '../filters/mirror/config.js';
export type { RedirectAction } from '../filters/redirect/config.js';
export type { RewriteAction } from '../filters/rewrite/config.js';
export type { SplitTarget, StickyKey } from '../filters/split/config.js';

/** Where a config node came from, for error messages and `usher explain`. */
export interface SourceLocation {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

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

export interface ServerConfig {
  /** As written, e.g. "http://127.0.0.1:3001". Only http: and https: are accepted. */
  url: string;
  /** url.origin, e.g. "http://127.0.0.1:3001" — what the connection pool is keyed by. */
  origin: string;
  /** host[:port] as it goes into Host when host_header is "upstream". */
  authority: string;
  weight: number; // default 1, integer >= 1
  backup: boolean; // default false: only when no priority group has healthy capacity
  priority: number; // default 0: the first group; higher numbers are failover groups
  /** Circuit breaker: most requests in flight on this server; null: no limit. */
  max_requests: number | null;
}

export interface RetryConfig {
  attempts: number; // retries after the first try, default 2
  /** 5xx statuses and "reset". Default [502, 503, 504, "reset"]. */
  on: (number | 'reset')[];
  per_try_timeout: number | null; // ms, default 15000; null: only timeouts.response_header
  backoff: { base: number; max: number }; // ms
  budget: { percent: number; min_retries: number };
  buffer_body: number; // bytes
}

export interface DnsConfig {
  refresh: number; // ms
  family: 'any' | 'ipv4' | 'ipv6';
  /** "host" or "host:port"; empty: the system's resolvers. */
  servers: string[];
  /** The names are SRV records (port, weight and priority from the answer). */
  srv: boolean;
}

export interface CircuitBreakerConfig {
  max_requests: number | null;
  max_pending: number;
  queue_timeout: number; // ms
}

export interface HealthCheckConfig {
  type: 'http' | 'tcp';
  path: string;
  method: 'GET' | 'HEAD';
  /** null: the server's own authority. */
  host: string | null;
  /** Inclusive [low, high] ranges. */
  expect_status: [number, number][];
  /** A RegExp source, checked at load. */
  expect_body: string | null;
  interval: number; // ms
  jitter: number; // percent
  timeout: number; // ms
  rise: number;
  fall: number;
}

export interface OutlierConfig {
  consecutive_5xx: number; // default 3
  consecutive_connect_failures: number;
  base_ejection_time: number; // ms
  max_ejection_time: number; // ms
  max_ejection_percent: number;
  /** A passing active check ends an ejection. Default true. */
  readmit_on_check: boolean;
}

export interface UpstreamConfig {
  name: string;
  servers: ServerConfig[]; // at least one
  balance: BalancerName;
  /** balance: hash — "client_ip", "path", "header:NAME", "cookie:NAME", "query:NAME". Default "client_ip". */
  hash: { key: string };
  /** balance: sticky — cookie name (default "usher_sticky"), signing secret (null: random per start), Max-Age in ms (null: session). */
  sticky: { cookie: string; secret: string | null; max_age: number | null };
  /** Percent 0..100, default 50 (Envoy's): below it a priority group panics (see schema). */
  panic_threshold: number;
  /** ms, default 0 (off): weight ramp after recovering. */
  slow_start: number;
  /** Active checks; null: none. */
  health_check: HealthCheckConfig | null;
  /** Passive ejection; null: none. */
  outlier_detection: OutlierConfig | null; // on by default; null: enabled: false
  retry: RetryConfig;
  /** null: no upstream-wide limit (per-server max_requests may still apply). */
  circuit_breaker: CircuitBreakerConfig | null;
  /** DNS discovery of servers given by name; null: off. */
  dns: DnsConfig | null;
  /** http1 (default), h2 (TLS + ALPN), h2c (cleartext prior knowledge). */
  protocol: 'http1' | 'h2' | 'h2c';
  /** "preserve" (default): the client's Host; "upstream": the server's own host[:port]; any other string: sent as is. */
  host_header: string;
  pool: {
    max_connections: number; // per server, default 128
    keep_alive_timeout: number; // ms, default 60000: idle upstream connection lifetime
  };
  timeouts: {
    connect: number; // ms, default 5000
    response_header: number; // ms, default 60000: request sent → response head received
    body_idle: number; // ms, default 60000: max gap between upstream body chunks
  };
  /** TLS to https:// servers (verification on unless insecure_skip_verify). */
  tls?: UpstreamTlsConfig;
  source: SourceLocation;
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
  /** One JSON line per request on stdout. Default false (as nginx/haproxy benchmarks run). */
  access_log: boolean;
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
  /** Automatic certificates; absent when not configured. */
  acme?: AcmeConfig;
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
