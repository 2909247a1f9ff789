// The normalised `upstreams:` section (see schema.ts for what each setting means): defaults
// applied, durations in milliseconds, sizes in bytes. What cluster.ts and the rest of
// src/upstream/ are built from.
import type { SourceLocation } from '../../config/issues.js';
import type { UpstreamTlsConfig } from '../../tls/config/types.js';
import type { BalancerName } from '../balancers/names.js';

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
  /** The HTTP/1.1 client (always undici for h2 and h2c). */
  engine: 'undici' | 'native';
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
