// Access-log line formats (issue #15 pt 5): JSON (the default, one object per line), nginx's
// `combined` and `common`, or a template of named fields. Compiled once per config; a line is
// rendered from the done event (events.ts) and nothing else.
import { ACCESS_LOG_FIELDS } from './log-fields.js';
import { parseBraces } from '../config/template.js';
import type { DoneEvent } from './events.js';
import { traceIdOf } from './tracing/state.js';

export const NAMED_FORMATS = ['json', 'combined', 'common'] as const;

/** The fields a template may name, as {name}; {header.NAME} is a request header. */
export const TEMPLATE_FIELDS = [
  'time', 'time_local', 'request_id', 'client', 'client_address', 'method', 'host', 'path', 'protocol', 'request',
  'status', 'bytes_in', 'bytes_out', 'duration_ms', 'duration_s', 'route', 'upstream', 'attempts', 'reason', 'trace_id',
] as const;
type Field = (typeof TEMPLATE_FIELDS)[number];

type Part = string | ((ev: DoneEvent) => string);

export type TemplateParse = { ok: true; parts: Part[] } | { ok: false; message: string; hint: string };

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => (n < 10 ? `0${n}` : String(n));

/** nginx's $time_local: "03/Dec/2026:09:10:11 +0000" (local time and offset). */
export function timeLocal(d: Date): string {
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  return `${two(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${off < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));
const protocolOf = (ev: DoneEvent) => `HTTP/${ev.ctx.httpVersion === '2' ? '2.0' : ev.ctx.httpVersion}`;
/** The end of the request as wall-clock time. */
const endTime = (ev: DoneEvent) => new Date(Date.now() - (performance.now() - (ev.ctx.timings.end ?? performance.now())));
/** nginx escapes " and \ and bytes outside printable ASCII in a log line as \xHH. */
const escaped = (s: string) => (/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(s) ? s : s.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

const FIELDS: Record<Field, (ev: DoneEvent) => string> = {
  time: (ev) => endTime(ev).toISOString(),
  time_local: (ev) => timeLocal(endTime(ev)),
  request_id: (ev) => dash(ev.ctx.requestId),
  client: (ev) => ev.ctx.clientIp,
  client_address: (ev) => ev.ctx.clientAddress,
  method: (ev) => dash(escaped(ev.ctx.method)),
  host: (ev) => dash(ev.host === null ? null : escaped(ev.host)),
  path: (ev) => dash(escaped(ev.ctx.target)),
  protocol: protocolOf,
  // A request rejected before its request line was read has none: "-", as nginx writes it.
  request: (ev) => (ev.ctx.method === '' ? '-' : `${escaped(ev.ctx.method)} ${escaped(ev.ctx.target)} ${protocolOf(ev)}`),
  status: (ev) => String(ev.status),
  bytes_in: (ev) => dash(ev.bytesIn),
  bytes_out: (ev) => dash(ev.bytesOut),
  duration_ms: (ev) => (Math.round(ev.durationMs * 1000) / 1000).toFixed(3),
  duration_s: (ev) => (ev.durationMs / 1000).toFixed(3),
  route: (ev) => dash(ev.ctx.route?.name),
  upstream: (ev) => dash(ev.ctx.upstream.server),
  attempts: (ev) => String(ev.ctx.upstream.attempts),
  reason: (ev) => dash(ev.reason),
  trace_id: (ev) => dash(traceIdOf(ev.ctx)),
};

/** A template like "{client} {request} {status} {duration_ms}ms {header.user-agent}" ("{{" is a literal "{"). */
export function parseLogTemplate(text: string): TemplateParse {
  return parseBraces<Part>(
    text,
    (t) => t,
    (name) => {
      if (name.startsWith('header.') && name.length > 7) {
        const h = name.slice(7).toLowerCase();
        return (ev: DoneEvent) => {
          const v = ev.ctx.header(h);
          return v === undefined ? '-' : escaped(v);
        };
      }
      return (TEMPLATE_FIELDS as readonly string[]).includes(name) ? FIELDS[name as Field] : undefined;
    },
    `fields: {${TEMPLATE_FIELDS.join('}, {')}}, {header.NAME}`,
    'field',
  );
}

// nginx: log_format combined '$remote_addr - $remote_user [$time_local] "$request" $status
// $body_bytes_sent "$http_referer" "$http_user_agent"'; common is the same without the last two.
// usher has no per-response body count: the bytes it wrote downstream (head included, nginx's
// $bytes_sent) stand in, and "-" on HTTP/2, where streams share the connection's bytes.
const COMMON = '{client} - - [{time_local}] "{request}" {status} {bytes_out}';
const COMBINED = `${COMMON} "{header.referer}" "{header.user-agent}"`;

/** A text format as one function from the done event to the line (without its newline). */
export function compileTextFormat(format: string): (ev: DoneEvent) => string {
  const t = parseLogTemplate(format === 'combined' ? COMBINED : format === 'common' ? COMMON : format);
  if (!t.ok) throw new Error(`access log format: ${t.message}`); // the config check reported it
  const parts = t.parts;
  return (ev) => {
    let line = '';
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      line += typeof p === 'string' ? p : p(ev);
    }
    return line;
  };
}

/** The JSON line's fields (the default format). */
export function jsonFields(ev: DoneEvent): Record<string, unknown> {
  const ctx = ev.ctx;
  const upstream = ctx.upstream;
  return {
    request_id: ctx.requestId,
    client: ctx.clientIp,
    // The client after proxy.trusted_proxies (what access lists judge): differs from `client` behind a trusted proxy.
    client_address: ctx.clientAddress,
    method: ctx.method,
    host: ev.host,
    path: ctx.target,
    status: ev.status,
    bytes_in: ev.bytesIn,
    bytes_out: ev.bytesOut,
    duration_ms: Math.round(ev.durationMs * 1000) / 1000,
    // null rather than undefined: pino drops undefined keys, and every line should have the same keys.
    route: ctx.route?.name ?? null,
    upstream: upstream.server ?? null,
    attempts: upstream.attempts,
    reason: ev.reason,
    // The W3C trace id (tracing on), continued from the client's traceparent or started by usher.
    trace_id: traceIdOf(ctx),
    // fields a filter added for this request (the WAF's matched rules and score)
    ...ctx.get(ACCESS_LOG_FIELDS),
  };
}

/** log.access_log_format: a known name or a template whose fields exist; settings that do nothing while access_log is off are a warning. */
export function checkAccessLogSettings(log: unknown, error: (path: (string | number)[], message: string, hint?: string) => void, warn: (path: (string | number)[], message: string) => void): void {
  if (log === null || typeof log !== 'object' || Array.isArray(log)) return;
  const l = log as Record<string, unknown>;
  const format = l.access_log_format;
  if (typeof format === 'string' && !(NAMED_FORMATS as readonly string[]).includes(format)) {
    if (!format.includes('{')) {
      error(['log', 'access_log_format'], `${JSON.stringify(format)} is not a format name and has no {field}`, 'write json, combined, common, or a template like "{client} {request} {status}"');
    } else {
      const t = parseLogTemplate(format);
      if (!t.ok) error(['log', 'access_log_format'], t.message, t.hint);
    }
  }
  if (l.access_log !== true) {
    for (const key of ['access_log_format', 'access_log_file', 'access_log_buffer', 'access_log_sample']) {
      if (l[key] !== undefined) warn(['log', key], `log.${key} has no effect while log.access_log is not true`);
    }
  }
}
