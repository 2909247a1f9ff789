// The `tracing:` section (issue #15 pt 3): W3C Trace Context propagation and OpenTelemetry spans
// exported over OTLP/HTTP. Off unless configured: then nothing subscribes to the request path's
// events and a traceparent a client sends goes upstream untouched.
import { Type } from '@sinclair/typebox';
import { isRec, type ErrorFn, type Rec } from '../../config/check-kit.js';
import { duration, headerName, object, stringEnum } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';

// The batch defaults are the OpenTelemetry SDK's BatchSpanProcessor's (OTEL_BSP_*), but for the
// export timeout: 10 s (the OTLP exporter's own default) rather than 30 s.
export const TRACING_DEFAULTS = Object.freeze({
  sample_ratio: 1,
  service_name: 'usher',
  incoming: 'continue' as const,
  timeout: '10s',
  max_queue: 2048,
  max_batch: 512,
  flush_interval: '5s',
});

export const TracingSchema = object(
  {
    otlp: object(
      {
        endpoint: Type.String({
          pattern: '^https?://[^\\s/?#]+[^\\s#]*$',
          description:
            'The OTLP/HTTP traces URL of a collector, e.g. "http://127.0.0.1:4318/v1/traces". A URL with no path gets "/v1/traces" (OTLP/HTTP\'s default path). Spans are sent as OTLP JSON (Content-Type: application/json).',
          'x-usher-expected': 'an http:// or https:// URL like "http://collector:4318/v1/traces"',
        }),
        headers: Type.Optional(
          Type.Record(headerName('A header name.'), Type.String(), {
            additionalProperties: false,
            default: {},
            description: 'Headers sent with every export (an API key: `authorization: Bearer ${OTLP_TOKEN}`).',
            'x-usher-key': 'header name',
          }),
        ),
        timeout: Type.Optional(duration('How long one export may take before it is abandoned (its spans are counted as failed).', TRACING_DEFAULTS.timeout)),
      },
      { description: 'Where finished spans go: an OpenTelemetry collector (or any OTLP/HTTP receiver).' },
    ),
    sample_ratio: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: TRACING_DEFAULTS.sample_ratio,
        description:
          'Share of new traces that are recorded (0 to 1). Parent-based: a request that continues a trace follows its traceparent\'s sampled flag instead. An unsampled request still carries a traceparent upstream (with the flag off), so the services behind usher agree.',
      }),
    ),
    service_name: Type.Optional(Type.String({ minLength: 1, default: TRACING_DEFAULTS.service_name, description: 'The `service.name` resource attribute of usher\'s spans.' })),
    incoming: Type.Optional(
      stringEnum(['continue', 'trusted_proxies', 'ignore'] as const, {
        default: TRACING_DEFAULTS.incoming,
        description:
          "A client's traceparent: continue: any client's is continued (its trace id, its sampled flag); trusted_proxies: only from `proxy.trusted_proxies` (others start a new trace, so a client cannot force sampling); ignore: every request starts a new trace. An invalid traceparent always starts a new trace (and its tracestate is dropped).",
      }),
    ),
    max_queue: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000, default: TRACING_DEFAULTS.max_queue, description: 'Finished spans held for export: queued, in the export in flight, and in a batch waiting for its retry (the collector answered 429 or 503, or could not be reached). When it is full (the collector is slow or down) new spans are dropped and counted.' }),
    ),
    max_batch: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: TRACING_DEFAULTS.max_batch, description: 'Most spans in one export request; a full batch is sent at once.' })),
    flush_interval: Type.Optional(duration('Longest time a finished span waits before it is sent.', TRACING_DEFAULTS.flush_interval)),
  },
  {
    description:
      'Distributed tracing: W3C Trace Context (traceparent, tracestate) continued or started and sent upstream, and OpenTelemetry spans (a server span per request, a client span per upstream try) exported over OTLP/HTTP. Off unless configured.',
  },
);

export interface TracingConfig {
  /** The OTLP/HTTP traces URL, with its path. */
  readonly endpoint: string;
  /** Name/value pairs (a list: a header may be named "__proto__"). */
  readonly headers: readonly (readonly [string, string])[];
  readonly timeout: number;
  readonly sample_ratio: number;
  readonly service_name: string;
  readonly incoming: 'continue' | 'trusted_proxies' | 'ignore';
  readonly max_queue: number;
  readonly max_batch: number;
  readonly flush_interval: number;
}

export interface TracingInput {
  otlp: { endpoint: string; headers?: Record<string, string>; timeout?: string | number };
  sample_ratio?: number;
  service_name?: string;
  incoming?: TracingConfig['incoming'];
  max_queue?: number;
  max_batch?: number;
  flush_interval?: string | number;
}

export function normalizeTracing(input: TracingInput): TracingConfig {
  const d = TRACING_DEFAULTS;
  const url = new URL(input.otlp.endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return {
    endpoint: url.href,
    headers: Object.entries(input.otlp.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    timeout: parseDuration(input.otlp.timeout ?? d.timeout),
    sample_ratio: input.sample_ratio ?? d.sample_ratio,
    service_name: input.service_name ?? d.service_name,
    incoming: input.incoming ?? d.incoming,
    max_queue: input.max_queue ?? d.max_queue,
    max_batch: input.max_batch ?? d.max_batch,
    flush_interval: parseDuration(input.flush_interval ?? d.flush_interval),
  };
}

export function checkTracing(data: Rec, error: ErrorFn): void {
  const t = data.tracing;
  if (!isRec(t) || !isRec(t.otlp) || typeof t.otlp.endpoint !== 'string') return;
  let url: URL;
  try {
    url = new URL(t.otlp.endpoint);
  } catch {
    return error(['tracing', 'otlp', 'endpoint'], `${JSON.stringify(t.otlp.endpoint)} is not a URL`, 'write it like "http://127.0.0.1:4318/v1/traces"');
  }
  if (url.username !== '' || url.password !== '') {
    error(['tracing', 'otlp', 'endpoint'], 'credentials in the collector URL would be logged with it', 'send them as a header instead: tracing.otlp.headers: { authorization: ... }');
  }
  if (isRec(t.otlp.headers)) {
    for (const [name, value] of Object.entries(t.otlp.headers)) {
      if (typeof value === 'string' && /[^\t\x20-\x7e\x80-\xff]/.test(value)) {
        error(['tracing', 'otlp', 'headers', name], `the value of header ${JSON.stringify(name)} has a character a header cannot carry (CR, LF, NUL or another control character)`);
      }
    }
  }
  if (typeof t.max_batch === 'number' && typeof t.max_queue === 'number' && t.max_batch > t.max_queue) {
    error(['tracing', 'max_batch'], `max_batch (${t.max_batch}) is larger than max_queue (${t.max_queue}): a batch could never fill`, 'make max_batch at most max_queue');
  }
}
