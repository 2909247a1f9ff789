// Parts of the top-level config schema (schema.ts): the defaults of the
// sections that live in src/config, and their patterns. The helpers for durations, sizes,
// strict objects and header names are in schema-kit.ts (re-exported here); the sections of the
// route filters, with their defaults, are in src/filters/<name>/config.ts. See schema.ts for
// the x-usher-* annotation keywords.
export { duration, headerName, object, PATH_EXPECTED, PATH_PATTERN, size, stringEnum, TOKEN_PATTERN } from './schema-kit.js';
import { BALANCER_NAMES } from '../upstream/balancers/names.js';

export const DEFAULTS = {
  server: { weight: 1, backup: false, priority: 0 },
  upstream: {
    balance: 'round_robin',
    host_header: 'preserve',
    pool: { max_connections: 128, keep_alive_timeout: '60s' },
    timeouts: { connect: '5s', response_header: '60s', body_idle: '60s' },
    hash: { key: 'client_ip' },
    sticky: { cookie: 'usher_sticky' },
    panic_threshold: 50,
    slow_start: '0s',
    health_check: { type: 'http', path: '/', method: 'GET', expect_status: ['200-399'], interval: '5s', jitter: 10, timeout: '2s', rise: 2, fall: 3 },
    outlier_detection: {
      enabled: true,
      consecutive_5xx: 3,
      consecutive_connect_failures: 1,
      base_ejection_time: '10s',
      max_ejection_time: '5m',
      max_ejection_percent: 50,
      readmit_on_check: true,
    },
    retry: {
      attempts: 2,
      on: [502, 503, 504, 'reset'] as (number | string)[],
      per_try_timeout: '15s',
      backoff: { base: '25ms', max: '250ms' },
      budget: { percent: 20, min_retries: 3 },
      buffer_body: '64kb',
    },
    circuit_breaker: { max_pending: 0, queue_timeout: '1s' },
    dns: { refresh: '30s', family: 'any', servers: [] as string[], srv: false },
  },
  respond: { status: 200, body: '', headers: {} as Record<string, string> },
  route: { priority: 0 },
  timeouts: { request_header: '10s', body_idle: '30s', keep_alive: '5s', graceful_shutdown: '10s' },
  limits: { request_line: '8kb', header_size: '16kb', header_count: 100, body: null },
  proxy: {
    trusted_proxies: [] as string[],
    hide_headers: ['server', 'x-powered-by'],
    via: 'usher',
    drop_underscore_headers: true,
    request_id_header: 'x-request-id',
  },
  log: { level: 'info', access_log: false },
  routing: { encoded_slashes: 'reject' },
  http2: { max_concurrent_streams: 100, max_header_list_size: '32kb', max_session_memory: '10mb', max_resets: 200, reset_window: '10s' },
  upgrade: { protocols: ['websocket'], idle_timeout: '10m' },
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** From the balancer registry's own list (src/upstream/balancers/names.ts). */
export const BALANCERS = BALANCER_NAMES;
export const UPSTREAM_PROTOCOLS = ['http1', 'h2', 'h2c'] as const;

export const UPSTREAM_NAME_PATTERN = '^[A-Za-z0-9_.-]+$';

export const VIA_EXPECTED = "a name without spaces (letters, digits and !#$%&'*+.^_`|~-)";
