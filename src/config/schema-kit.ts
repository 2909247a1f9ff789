// Schema building blocks, the machinery every config section is written with: schema.ts,
// schema-parts.ts, and the sections beside their features (src/filters/<name>/config.ts,
// src/router/config.ts, src/tls/config/schema.ts). Imports nothing but units.ts, so any section
// may use it.
import { Type, type SchemaOptions, type TSchema } from '@sinclair/typebox';
import { DURATION_PATTERN, MAX_DURATION_MS, SIZE_PATTERN } from './units.js';

/** RFC 9110 §5.6.2 token: what a header name may contain. */
export const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/** A path as a route or a rewrite writes it. */
export const PATH_PATTERN = '^/[^\\s?#]*$';
export const PATH_EXPECTED = 'a path starting with "/" (no spaces, "?" or "#")';

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
