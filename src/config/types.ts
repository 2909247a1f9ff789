// The normalized, validated and frozen configuration that the rest of usher consumes.
// The loader (load.ts) turns a YAML/JSON/JS file into this shape: every default applied,
// durations in milliseconds, sizes in bytes, names resolved. Nothing downstream of the loader
// re-validates or merges options per request.
import type { AcmeConfig, ListenerTlsConfig, UpstreamTlsConfig } from './types-tls.js';
export type { AcmeConfig, CertificateFiles, ListenerTlsConfig, UpstreamTlsConfig } from './types-tls.js';

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
}

export interface ServerConfig {
  /** As written, e.g. "http://127.0.0.1:3001". Only http: and https: are accepted. */
  url: string;
  /** url.origin, e.g. "http://127.0.0.1:3001" — what the connection pool is keyed by. */
  origin: string;
  /** host[:port] as it goes into Host when host_header is "upstream". */
  authority: string;
  weight: number; // default 1, integer >= 1
}

export interface UpstreamConfig {
  name: string;
  servers: ServerConfig[]; // at least one
  balance: 'round_robin';
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
  headers: Record<string, string>; // default {}
}

export interface RouteMatch {
  /** Lower-cased host names; "*.example.com" wildcards allowed; port stripped unless given. */
  hosts: string[]; // empty: any host
  /** Path prefix on a segment boundary ("/api" matches "/api" and "/api/x", not "/apix"). */
  path?: string;
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
  upstreams: Record<string, UpstreamConfig>; // may be empty when all routes respond
  routes: RouteConfig[]; // may be empty (every request: 404 no_route)
  timeouts: DownstreamTimeouts;
  limits: Limits;
  proxy: ProxySettings;
  log: LogSettings;
  /** Automatic certificates; absent when not configured. */
  acme?: AcmeConfig;
  /** The file it came from ("<embedded>" for the built-in demo). */
  file: string;
}

/** One problem found in a config. */
export interface ConfigIssue {
  severity: 'error' | 'warning';
  file: string;
  line?: number; // 1-based, when known
  column?: number; // 1-based, when known
  /** JSON-path-like: "routes[2].upstream", "upstreams.app.servers[0].url", "" for the root. */
  path: string;
  /** What was wrong and what was expected, e.g. "expected a duration like 5s or 250ms, got \"5 parsecs\"". */
  message: string;
  /** e.g. "did you mean \"upstream\"?" */
  hint?: string;
}

export type LoadResult =
  | { ok: true; config: UsherConfig; warnings: ConfigIssue[] }
  | { ok: false; errors: ConfigIssue[]; warnings: ConfigIssue[] };
