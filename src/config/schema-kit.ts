// Schema building blocks shared by schema.ts and schema-tls.ts.
import { Type, type SchemaOptions } from '@sinclair/typebox';
import { DURATION_PATTERN, MAX_DURATION_MS } from './units.js';

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
