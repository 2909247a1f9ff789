// Normalizes a valid upstream (schema.ts) into an UpstreamConfig (types.ts): defaults applied,
// units parsed, server URLs split. Runs after schema and checks passed (src/config/normalize.ts),
// so every parse succeeds; a failure is a bug in the checks and throws.
import type { Static } from '@sinclair/typebox';
import { parseServerUrl, type Parsed } from '../../config/address.js';
import type { SourceLocation } from '../../config/issues.js';
import { parseDuration, parseSize } from '../../config/units.js';
import { SERVER_DEFAULTS, UPSTREAM_DEFAULTS, type UpstreamSchema } from './schema.js';
import type { HealthCheckConfig, OutlierConfig, RetryConfig, ServerConfig, UpstreamConfig } from './types.js';

type UpstreamInput = Static<typeof UpstreamSchema>;

function must<T>(r: Parsed<T>): T {
  if (!r.ok) throw new Error(`usher config: unchecked invalid value: ${r.message}`);
  return r;
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/**
 * The engine of an upstream that does not name one: native, or undici where the environment
 * says USHER_UPSTREAM_ENGINE=undici (how the test suite runs on both, scripts/run-tests.js).
 * HTTP/2 upstreams always use undici.
 */
function defaultEngine(protocol: string): 'undici' | 'native' {
  return protocol === 'http1' && process.env.USHER_UPSTREAM_ENGINE !== 'undici' ? 'native' : 'undici';
}

export function normalizeUpstream(name: string, u: UpstreamInput, source: SourceLocation): UpstreamConfig {
  const servers = u.servers.map((s): ServerConfig => {
    const url = typeof s === 'string' ? s : s.url;
    const weight = typeof s === 'string' ? SERVER_DEFAULTS.weight : (s.weight ?? SERVER_DEFAULTS.weight);
    const { origin, authority } = must(parseServerUrl(url));
    const backup = typeof s === 'string' ? SERVER_DEFAULTS.backup : (s.backup ?? SERVER_DEFAULTS.backup);
    const priority = typeof s === 'string' ? SERVER_DEFAULTS.priority : (s.priority ?? SERVER_DEFAULTS.priority);
    const max_requests = typeof s === 'string' ? null : (s.max_requests ?? null);
    return { url, origin, authority, weight, backup, priority, max_requests };
  });
  const pool = u.pool ?? {};
  const t = u.timeouts ?? {};
  return {
    name,
    servers,
    balance: u.balance ?? UPSTREAM_DEFAULTS.balance,
    protocol: u.protocol ?? 'http1',
    engine: u.engine ?? defaultEngine(u.protocol ?? 'http1'),
    hash: { key: u.hash?.key ?? UPSTREAM_DEFAULTS.hash.key },
    sticky: {
      cookie: u.sticky?.cookie ?? UPSTREAM_DEFAULTS.sticky.cookie,
      secret: u.sticky?.secret ?? null,
      max_age: u.sticky?.max_age === undefined ? null : parseDuration(u.sticky.max_age),
    },
    panic_threshold: u.panic_threshold ?? UPSTREAM_DEFAULTS.panic_threshold,
    slow_start: parseDuration(u.slow_start ?? UPSTREAM_DEFAULTS.slow_start),
    health_check: u.health_check === undefined ? null : normalizeHealthCheck(u.health_check),
    outlier_detection: u.outlier_detection?.enabled === false ? null : normalizeOutlier(u.outlier_detection ?? {}),
    retry: normalizeRetry(u.retry ?? {}),
    dns:
      u.dns === undefined
        ? null
        : {
            refresh: parseDuration(u.dns.refresh ?? UPSTREAM_DEFAULTS.dns.refresh),
            family: u.dns.family ?? UPSTREAM_DEFAULTS.dns.family,
            servers: [...(u.dns.servers ?? UPSTREAM_DEFAULTS.dns.servers)],
            srv: u.dns.srv ?? UPSTREAM_DEFAULTS.dns.srv,
          },
    circuit_breaker:
      u.circuit_breaker === undefined
        ? null
        : {
            max_requests: u.circuit_breaker.max_requests ?? null,
            max_pending: u.circuit_breaker.max_pending ?? UPSTREAM_DEFAULTS.circuit_breaker.max_pending,
            queue_timeout: parseDuration(u.circuit_breaker.queue_timeout ?? UPSTREAM_DEFAULTS.circuit_breaker.queue_timeout),
          },
    host_header: u.host_header ?? UPSTREAM_DEFAULTS.host_header,
    pool: {
      max_connections: pool.max_connections ?? UPSTREAM_DEFAULTS.pool.max_connections,
      keep_alive_timeout: parseDuration(pool.keep_alive_timeout ?? UPSTREAM_DEFAULTS.pool.keep_alive_timeout),
    },
    timeouts: {
      connect: parseDuration(t.connect ?? UPSTREAM_DEFAULTS.timeouts.connect),
      response_header: parseDuration(t.response_header ?? UPSTREAM_DEFAULTS.timeouts.response_header),
      body_idle: parseDuration(t.body_idle ?? UPSTREAM_DEFAULTS.timeouts.body_idle),
    },
    source,
  };
}

function normalizeHealthCheck(h: NonNullable<UpstreamInput['health_check']>): HealthCheckConfig {
  const d = UPSTREAM_DEFAULTS.health_check;
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
  const d = UPSTREAM_DEFAULTS.retry;
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
  const d = UPSTREAM_DEFAULTS.outlier_detection;
  return {
    consecutive_5xx: o.consecutive_5xx ?? d.consecutive_5xx,
    consecutive_connect_failures: o.consecutive_connect_failures ?? d.consecutive_connect_failures,
    base_ejection_time: parseDuration(o.base_ejection_time ?? d.base_ejection_time),
    max_ejection_time: parseDuration(o.max_ejection_time ?? d.max_ejection_time),
    max_ejection_percent: o.max_ejection_percent ?? d.max_ejection_percent,
    readmit_on_check: o.readmit_on_check ?? d.readmit_on_check,
  };
}
