// Building blocks of the config schema (schema.ts, schema-routing.ts): defaults, patterns and
// helpers for durations, sizes, strict objects and header names. See schema.ts for the
// x-usher-* annotation keywords.
import { Type, type TSchema, type SchemaOptions } from '@sinclair/typebox';
import { DURATION_PATTERN, MAX_DURATION_MS, SIZE_PATTERN } from './units.js';

export const DEFAULTS = {
  server: { weight: 1 },
  upstream: {
    balance: 'round_robin',
    host_header: 'preserve',
    pool: { max_connections: 128, keep_alive_timeout: '60s' },
    timeouts: { connect: '5s', response_header: '60s', body_idle: '60s' },
  },
  respond: { status: 200, body: '', headers: {} as Record<string, string> },
  route: { priority: 0 },
  split: { weight: 1 },
  redirect: { status: 301 },
  mirror: { percent: 100, max_body: '64kb', max_concurrent: 16, timeout: '5s' },
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
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const BALANCERS = ['round_robin'] as const;

/** RFC 9110 §5.6.2 token: what a header name may contain. */
export const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
export const UPSTREAM_NAME_PATTERN = '^[A-Za-z0-9_.-]+$';
/** A host name or IP literal, optionally "*."-prefixed and with a port. */
export const HOST_EXPECTED = 'a host name like "example.com" or "*.example.com", optionally with ":port"';
export const MATCH_HOST_PATTERN =
  '^((\\*\\.)?[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$';

export const VIA_EXPECTED = "a name without spaces (letters, digits and !#$%&'*+.^_`|~-)";

export function stringEnum<T extends string>(values: readonly T[], options: SchemaOptions) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

export function duration(description: string, dflt: string) {
  return Type.Union(
    [Type.Integer({ minimum: 0, maximum: MAX_DURATION_MS }), Type.String({ pattern: DURATION_PATTERN })],
    {
      description: `${description} A duration: milliseconds as a number, or a string with units ms, s, m, h ("250ms", "5s", "1m30s").`,
      default: dflt,
      'x-usher-kind': 'duration',
    },
  );
}

export function size(description: string, dflt: string | number) {
  return Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
    description: `${description} A size: bytes as a number, or a string like "512", "16kb", "10mb", "1gb"; as in nginx, kb/mb/gb are powers of 1024 (k, m, g, kib, mib, gib also accepted).`,
    default: dflt,
    'x-usher-kind': 'size',
  });
}

export function object<T extends Record<string, TSchema>>(properties: T, options: SchemaOptions) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

export const headerName = (description: string, options: SchemaOptions = {}) =>
  Type.String({
    pattern: TOKEN_PATTERN,
    description,
    'x-usher-expected': 'a header name (letters, digits and !#$%&\'*+.^_`|~-)',
    ...options,
  });
