// Parts of the top-level config schema (schema.ts): the defaults of the parts that schema.ts
// itself defines, and their patterns. The helpers for durations, sizes, strict objects and
// header names are in schema-kit.ts (re-exported here); the sections beside their features
// have their own defaults (src/filters/<name>/config.ts, src/upstream/config/schema.ts,
// src/tls/config/schema.ts). See schema.ts for the x-usher-* annotation keywords.
export { duration, headerName, object, PATH_EXPECTED, PATH_PATTERN, size, stringEnum, TOKEN_PATTERN } from './schema-kit.js';

export const DEFAULTS = {
  workers: 'auto' as const,
  workers_mechanism: 'auto' as const,
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
  log: { level: 'info', access_log: false, access_log_format: 'json', access_log_sample: 1, access_log_buffer: '4mb' },
  routing: { encoded_slashes: 'reject' },
  http2: { max_concurrent_streams: 100, max_header_list_size: '32kb', max_session_memory: '10mb', max_resets: 200, reset_window: '10s' },
  upgrade: { protocols: ['websocket'], idle_timeout: '10m' },
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const VIA_EXPECTED = "a name without spaces (letters, digits and !#$%&'*+.^_`|~-)";
