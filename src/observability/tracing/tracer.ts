// Tracing (issue #15 pt 3): W3C Trace Context continued or started for every request and sent
// upstream, and OpenTelemetry spans — a server span per request, a client span per upstream try
// (retries visible) — with the attributes of the OpenTelemetry HTTP semantic conventions,
// exported by OtlpExporter. Created only when `tracing` is configured: it subscribes to the
// request path's diagnostics channels (events.ts), so with tracing off nothing is computed.
//
// Propagation (W3C Trace Context §3): a valid incoming traceparent (from whom `incoming` allows)
// is continued — same trace id, its span as the parent, its sampled flag (parent-based
// sampling) and its tracestate; otherwise a new trace starts, sampled at `sample_ratio`, and a
// tracestate that came with it is dropped. Each try carries usher's client span id as the parent
// upstream. An unsampled request that continues a trace passes its traceparent on untouched
// (usher records nothing in it); an unsampled new trace still sends one, flag off.
import type { BlockList } from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { REASONS } from '../../errors/index.js';
import type { RequestContext } from '../../pipeline/types.js';
import type { Endpoint } from '../../upstream/endpoint.js';
import { CHANNELS, type ConnectErrorEvent, type DoneEvent, type RetryEvent, type UpstreamResponseEvent, type UpstreamTryEvent } from '../events.js';
import type { TracingConfig } from './config.js';
import { OtlpExporter, type ExportCounts } from './exporter.js';
import { SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, type SpanRecord } from './span.js';
import { kTrace, type RequestTraceIds } from './state.js';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './trace-context.js';

/** One upstream try's span, open until the next try, a retry or the end of the request. */
interface ClientSpan {
  readonly spanId: string;
  readonly start: number;
  readonly endpoint: Endpoint;
  readonly upstream: string;
  readonly attempt: number;
  readonly method: string;
  readonly target: string;
  status: number;
  error: string | null;
}

class RequestTrace implements RequestTraceIds {
  /** Index of usher's traceparent value in the upstream head (set by the first try). */
  headerIndex = -1;
  current: ClientSpan | null = null;
  /** Finished client spans of this request (sampled only). */
  clients: SpanRecord[] | null = null;
  constructor(
    readonly traceId: string,
    readonly spanId: string,
    /** The caller's span id ('' when usher started the trace). */
    readonly parentId: string,
    readonly sampled: boolean,
    /** The incoming tracestate, when the trace is continued. */
    readonly traceState: string | undefined,
    /** Continued and unsampled: the incoming traceparent goes upstream as it came. */
    readonly passThrough: boolean,
    /** A traceparent/tracestate from the client that must not go upstream (a new trace started). */
    readonly replaceIncoming: boolean,
  ) {}
}

/** Methods the HTTP semantic conventions name; others are "_OTHER" with the original kept. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);
/** Query parameters the semantic conventions ask to redact in url.query / url.full (signatures, keys). */
const SENSITIVE_QUERY = /(^|&)(AWSAccessKeyId|Signature|sig|X-Goog-Signature)=[^&]*/g;

export class Tracer {
  readonly exporter: OtlpExporter;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly peers = new WeakMap<Endpoint, { host: string; port: number }>();

  constructor(
    private readonly host: unknown,
    readonly config: TracingConfig,
    private readonly trusted: BlockList | null,
    logger: Logger,
    version: string,
  ) {
    this.exporter = new OtlpExporter(config, logger, version);
    this.subscribe(CHANNELS.requestStart, this.onStart);
    this.subscribe(CHANNELS.upstreamTry, this.onTry);
    this.subscribe(CHANNELS.upstreamResponse, this.onResponse);
    this.subscribe(CHANNELS.connectError, this.onConnectError);
    this.subscribe(CHANNELS.retry, this.onRetry);
    this.subscribe(CHANNELS.done, this.onDone);
  }

  get counts(): ExportCounts & { queued: number } {
    return { ...this.exporter.counts, queued: this.exporter.queued };
  }

  /** Stops recording; what was recorded is flushed within the export timeout. */
  async close(): Promise<void> {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
    await this.exporter.close();
  }

  private subscribe(channel: string, fn: (message: unknown) => void): void {
    diagnostics.subscribe(channel, fn);
    this.unsubscribe.push(() => diagnostics.unsubscribe(channel, fn));
  }

  /** The request's trace: continued from its traceparent or started (sampling decided here, once). */
  private begin(ctx: RequestContext): RequestTrace {
    // One pass over the head for traceparent and tracestate (repeated fields joined, RFC 9110 §5.3:
    // two traceparents then fail to parse).
    let raw: string | undefined;
    let state: string | undefined;
    const h = ctx.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n.length !== 11 && n.length !== 10) continue;
      const lower = n.toLowerCase();
      if (lower === 'traceparent') raw = raw === undefined ? h[i + 1]! : `${raw}, ${h[i + 1]!}`;
      else if (lower === 'tracestate') state = state === undefined ? h[i + 1]! : `${state},${h[i + 1]!}`;
    }
    let parent = undefined;
    if (raw !== undefined && this.acceptsIncoming(ctx)) parent = parseTraceparent(raw);
    let tr: RequestTrace;
    if (parent !== undefined) {
      const sampled = parent.sampled;
      tr = new RequestTrace(parent.traceId, newSpanId(), parent.parentId, sampled, sampled ? state : undefined, !sampled, false);
    } else {
      const ratio = this.config.sample_ratio;
      const sampled = ratio >= 1 || (ratio > 0 && Math.random() < ratio);
      tr = new RequestTrace(newTraceId(), newSpanId(), '', sampled, undefined, false, raw !== undefined || state !== undefined);
    }
    ctx.set(kTrace, tr);
    return tr;
  }

  private acceptsIncoming(ctx: RequestContext): boolean {
    const mode = this.config.incoming;
    if (mode === 'continue') return true;
    if (mode === 'ignore' || this.trusted === null) return false;
    const ip = ctx.clientIp;
    return ip !== '' && this.trusted.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  }

  private readonly onStart = (message: unknown): void => {
    const ev = message as { server: unknown; ctx: RequestContext };
    if (ev.server === this.host) this.begin(ev.ctx);
  };

  private readonly onTry = (message: unknown): void => {
    const ev = message as UpstreamTryEvent;
    if (ev.server !== this.host) return;
    const tr = (ev.ctx.get(kTrace) as RequestTrace | undefined) ?? this.begin(ev.ctx);
    if (tr.passThrough) return;
    let parentForUpstream = tr.spanId;
    if (tr.sampled) {
      const now = performance.now();
      this.endClient(tr, now);
      const spanId = newSpanId();
      tr.current = { spanId, start: now, endpoint: ev.endpoint, upstream: ev.upstream, attempt: ev.attempt, method: ev.method, target: ev.target, status: 0, error: null };
      parentForUpstream = spanId;
    }
    const value = formatTraceparent(tr.traceId, parentForUpstream, tr.sampled);
    const h = ev.headers;
    if (tr.headerIndex >= 0 && h[tr.headerIndex - 1] === 'traceparent') h[tr.headerIndex] = value;
    else tr.headerIndex = setTraceparent(h, value, tr.replaceIncoming);
  };

  private readonly onResponse = (message: unknown): void => {
    const ev = message as UpstreamResponseEvent;
    if (ev.server !== this.host) return;
    const c = (ev.ctx.get(kTrace) as RequestTrace | undefined)?.current;
    if (c == null) return;
    c.status = ev.status;
    if (ev.status >= 400) c.error = String(ev.status);
  };

  private readonly onConnectError = (message: unknown): void => {
    const ev = message as ConnectErrorEvent;
    if (ev.server !== this.host) return;
    const c = (ev.ctx.get(kTrace) as RequestTrace | undefined)?.current;
    if (c != null) c.error = ev.reason;
  };

  private readonly onRetry = (message: unknown): void => {
    const ev = message as RetryEvent;
    if (ev.server !== this.host) return;
    const tr = ev.ctx.get(kTrace) as RequestTrace | undefined;
    const c = tr?.current;
    if (c == null) return;
    if (ev.status !== null) c.status = ev.status;
    c.error ??= ev.status !== null ? String(ev.status) : ev.reason;
    this.endClient(tr!, performance.now());
  };

  private readonly onDone = (message: unknown): void => {
    const ev = message as DoneEvent;
    if (ev.server !== this.host) return;
    const ctx = ev.ctx;
    const tr = (ctx.get(kTrace) as RequestTrace | undefined) ?? this.begin(ctx);
    if (!tr.sampled) return;
    const end = ctx.timings.end ?? performance.now();
    const c = tr.current;
    if (c !== null && c.error === null && c.status === 0 && ev.reason !== null && REASONS[ev.reason].source === 'upstream') c.error = ev.reason;
    this.endClient(tr, end);
    const exporter = this.exporter;
    if (tr.clients !== null) for (const s of tr.clients) exporter.add(s);
    exporter.add(this.serverSpan(ctx, ev, tr, end));
  };

  private endClient(tr: RequestTrace, end: number): void {
    const c = tr.current;
    if (c === null) return;
    tr.current = null;
    (tr.clients ??= []).push(this.clientSpan(c, tr, end));
  }

  private serverSpan(ctx: RequestContext, ev: DoneEvent, tr: RequestTrace, end: number): SpanRecord {
    const method = ctx.method;
    const known = KNOWN_METHODS.has(method);
    const target = ctx.target;
    const q = target.indexOf('?');
    const a: (string | number)[] = [
      'http.request.method', known ? method : '_OTHER',
      'url.path', ctx.request?.path ?? (q < 0 ? target : target.slice(0, q)),
      'url.scheme', ctx.scheme,
      'network.protocol.version', ctx.httpVersion,
      'client.address', ctx.clientAddress,
      'network.peer.address', ctx.clientIp,
      'network.peer.port', ctx.clientPort,
      'usher.request_id', ctx.requestId,
    ];
    if (!known) a.push('http.request.method_original', method);
    if (q >= 0) a.push('url.query', redactQuery(target.slice(q + 1)));
    const host = ev.host;
    if (host !== null) {
      const { name, port } = splitHost(host);
      a.push('server.address', name);
      if (port !== undefined) a.push('server.port', port);
    }
    const ua = ctx.header('user-agent');
    if (ua !== undefined) a.push('user_agent.original', ua);
    if (ctx.route !== undefined) a.push('usher.route', ctx.route.name);
    const up = ctx.upstream;
    if (up.name !== undefined) a.push('usher.upstream', up.name);
    if (up.attempts > 1) a.push('usher.attempts', up.attempts);
    if (ev.status !== 0) a.push('http.response.status_code', ev.status);
    if (ev.reason !== null) a.push('usher.reason', ev.reason);
    // Server spans: 5xx is an error, 4xx is the client's (semantic conventions, HTTP spans §status).
    let status = STATUS_UNSET;
    if (ev.status >= 500 || (ev.status === 0 && ev.reason !== null && REASONS[ev.reason].source !== 'downstream')) {
      status = STATUS_ERROR;
      a.push('error.type', ev.reason ?? String(ev.status));
    }
    return { traceId: tr.traceId, spanId: tr.spanId, parentSpanId: tr.parentId, traceState: tr.traceState, name: known ? method : 'HTTP', kind: SPAN_KIND_SERVER, start: ctx.timings.start, end, attributes: a, status };
  }

  private clientSpan(c: ClientSpan, tr: RequestTrace, end: number): SpanRecord {
    const peer = this.peerOf(c.endpoint);
    const known = KNOWN_METHODS.has(c.method);
    const q = c.target.indexOf('?');
    const url = c.endpoint.origin + (q < 0 ? c.target : `${c.target.slice(0, q + 1)}${redactQuery(c.target.slice(q + 1))}`);
    const a: (string | number)[] = [
      'http.request.method', known ? c.method : '_OTHER',
      'server.address', peer.host,
      'server.port', peer.port,
      'url.full', url,
      'usher.upstream', c.upstream,
      'usher.server', c.endpoint.id,
    ];
    if (!known) a.push('http.request.method_original', c.method);
    if (c.attempt > 0) a.push('http.request.resend_count', c.attempt);
    if (c.status !== 0) a.push('http.response.status_code', c.status);
    // Client spans: any status of 400 or more is an error, and so is no response at all.
    if (c.error !== null) a.push('error.type', c.error);
    return { traceId: tr.traceId, spanId: c.spanId, parentSpanId: tr.spanId, traceState: tr.traceState, name: known ? c.method : 'HTTP', kind: SPAN_KIND_CLIENT, start: c.start, end, attributes: a, status: c.error === null ? STATUS_UNSET : STATUS_ERROR };
  }

  private peerOf(e: Endpoint): { host: string; port: number } {
    let p = this.peers.get(e);
    if (p === undefined) {
      const { name, port } = splitHost(e.authority);
      p = { host: name, port: port ?? (e.origin.startsWith('https:') ? 443 : 80) };
      this.peers.set(e, p);
    }
    return p;
  }
}

/** Puts `value` as the head's traceparent (dropping any the client sent, and its tracestate when `dropState`); returns the value's index. */
function setTraceparent(h: string[], value: string, dropState: boolean): number {
  let w = 0;
  for (let r = 0; r < h.length; r += 2) {
    const n = h[r]!;
    if (n.length === 11 || n.length === 10) {
      const lower = n.toLowerCase();
      if (lower === 'traceparent' || (dropState && lower === 'tracestate')) continue;
    }
    h[w++] = n;
    h[w++] = h[r + 1]!;
  }
  h.length = w;
  h.push('traceparent', value);
  return w + 1;
}

function redactQuery(q: string): string {
  return q.includes('=') && /AWSAccessKeyId|Signature|sig=/.test(q) ? q.replace(SENSITIVE_QUERY, '$1$2=REDACTED') : q;
}

/** "host:port", "[v6]:port" or "host" → name and port. */
function splitHost(host: string): { name: string; port: number | undefined } {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    const port = host.charCodeAt(close + 1) === 58 ? Number(host.slice(close + 2)) : undefined;
    return { name: host.slice(1, close), port: Number.isInteger(port) ? port : undefined };
  }
  const colon = host.lastIndexOf(':');
  if (colon < 0) return { name: host, port: undefined };
  const port = Number(host.slice(colon + 1));
  return { name: host.slice(0, colon), port: Number.isInteger(port) && host.slice(colon + 1) !== '' ? port : undefined };
}
