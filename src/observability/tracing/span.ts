// A finished span as the tracer records it, and its OTLP JSON form (opentelemetry-proto's
// trace.proto, JSON mapping: hex ids, int64 as decimal strings, enums as numbers). The request
// path keeps attributes as a flat key/value list; the OTLP objects are built at export time,
// off the request path.

/** OTLP Span.SpanKind. */
export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;
/** OTLP Status.StatusCode. */
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string | undefined;
  readonly name: string;
  readonly kind: number;
  /** performance.now() milliseconds. */
  readonly start: number;
  readonly end: number;
  /** key, value, key, value... (strings and integers). */
  readonly attributes: readonly (string | number)[];
  readonly status: number;
}

/** Unix nanoseconds as a decimal string, from performance.now() ms and the offset to Unix ms. */
export function unixNanos(t: number, offset: number): string {
  const ms = t + offset;
  let whole = Math.floor(ms);
  let ns = Math.round((ms - whole) * 1e6);
  if (ns >= 1e6) {
    whole++;
    ns -= 1e6;
  }
  return `${whole}${String(ns).padStart(6, '0')}`;
}

/**
 * One span as OTLP JSON text. Written out rather than built as objects for JSON.stringify: that
 * builds ~30 objects per span first; here only values are escaped (keys are ours).
 */
export function spanJson(s: SpanRecord, offset: number): string {
  let out = `{"traceId":"${s.traceId}","spanId":"${s.spanId}",`;
  if (s.parentSpanId !== '') out += `"parentSpanId":"${s.parentSpanId}",`;
  if (s.traceState !== undefined) out += `"traceState":${JSON.stringify(s.traceState)},`;
  out += `"name":${JSON.stringify(s.name)},"kind":${s.kind},"startTimeUnixNano":"${unixNanos(s.start, offset)}","endTimeUnixNano":"${unixNanos(Math.max(s.end, s.start), offset)}","attributes":[`;
  const a = s.attributes;
  for (let i = 0; i < a.length; i += 2) {
    const v = a[i + 1]!;
    if (i > 0) out += ',';
    out += `{"key":"${a[i] as string}","value":${typeof v === 'number' ? `{"intValue":"${v}"}` : `{"stringValue":${JSON.stringify(v)}}`}}`;
  }
  return `${out}],"status":{"code":${s.status}}}`;
}
