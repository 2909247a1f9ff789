// Tracing (issue #15 pt 3): W3C traceparent continued or started and sent upstream, and the
// spans exported over OTLP/HTTP to a real receiver started by the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp.js';
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';
import { startFlaky } from '../helpers/flaky.js';
import { formatTraceparent, parseTraceparent } from '../../src/observability/tracing/trace-context.js';
import { unixNanos } from '../../src/observability/tracing/span.js';
import { MAX_ATTEMPTS, retryDelay } from '../../src/observability/tracing/exporter.js';

type T = { after: (fn: () => Promise<void>) => void };

async function receiver(t: T): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  t.after(() => r.close());
  return r;
}

async function traced(t: T, endpoint: string, tracing: Record<string, unknown> = {}, servers?: string[], settings: Record<string, unknown> = {}): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: servers ?? [up.url], retry: { backoff: { base: '1ms', max: '2ms' } } } },
    routes: [{ name: 'main', upstream: 'app' }],
    tracing: { otlp: { endpoint }, flush_interval: '1h', ...tracing },
    ...settings,
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

const flush = (u: TestUsher) => u.usher.tracer!.exporter.flush();
const server = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === 2);
const client = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === 3);

test('a request without traceparent starts a trace: server and client spans with HTTP attributes, traceparent upstream, trace_id in the access log', async (t) => {
  const r = await receiver(t);
  const { up, u } = await traced(t, `${r.url}/v1/traces`, { service_name: 'edge', otlp: { endpoint: `${r.url}/v1/traces`, headers: { 'x-api-key': 'k1' } } });
  const res = await request(`${u.url}/items?page=2`, { headers: { 'user-agent': 'tracing-test' } });
  assert.equal(res.status, 200);
  await flush(u);
  assert.equal(r.spans.length, 2);
  assert.equal(r.exports[0]!.path, '/v1/traces');
  assert.equal(r.exports[0]!.headers['x-api-key'], 'k1');
  assert.equal(r.exports[0]!.headers['content-type'], 'application/json');
  const [s] = server(r.spans);
  const [c] = client(r.spans);
  assert.ok(s && c);
  assert.match(s.traceId, /^[0-9a-f]{32}$/);
  assert.equal(s.parentSpanId, undefined, 'a new trace: the server span is the root');
  assert.equal(c.traceId, s.traceId);
  assert.equal(c.parentSpanId, s.spanId);
  assert.equal(s.name, 'GET');
  assert.equal(s.resource['service.name'], 'edge');
  assert.deepEqual(
    {
      method: s.attributes['http.request.method'], path: s.attributes['url.path'], query: s.attributes['url.query'], scheme: s.attributes['url.scheme'],
      status: s.attributes['http.response.status_code'], version: s.attributes['network.protocol.version'], ua: s.attributes['user_agent.original'],
      client: s.attributes['client.address'], server: s.attributes['server.address'], port: s.attributes['server.port'], route: s.attributes['usher.route'],
    },
    { method: 'GET', path: '/items', query: 'page=2', scheme: 'http', status: 200, version: '1.1', ua: 'tracing-test', client: '127.0.0.1', server: '127.0.0.1', port: u.port, route: 'main' },
  );
  assert.equal(s.attributes['usher.request_id'], res.headers['x-request-id']);
  assert.equal(s.status, 0);
  assert.deepEqual(
    { method: c.attributes['http.request.method'], url: c.attributes['url.full'], address: c.attributes['server.address'], port: c.attributes['server.port'], status: c.attributes['http.response.status_code'], upstream: c.attributes['usher.upstream'] },
    { method: 'GET', url: `${up.url}/items?page=2`, address: '127.0.0.1', port: up.port, status: 200, upstream: 'app' },
  );
  assert.ok(s.start <= c.start && c.end <= s.end, 'the client span lies within the server span');
  // The upstream saw usher's client span as its parent, in the same trace.
  const tp = parseTraceparent(up.requests[0]!.headers.traceparent as string);
  assert.deepEqual(tp, { traceId: s.traceId, parentId: c.spanId, sampled: true });
  await waitFor(() => u.access.length === 1, 2000, 'access log');
  assert.equal(u.access[0]!.trace_id, s.traceId);
});

test('an incoming sampled traceparent is continued: same trace, its span as the parent, tracestate kept', async (t) => {
  const r = await receiver(t);
  const { up, u } = await traced(t, r.url, { sample_ratio: 0 });
  const incoming = formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', true);
  await request(`${u.url}/`, { headers: { traceparent: incoming, tracestate: 'vendor=abc' } });
  await flush(u);
  assert.equal(r.exports[0]!.path, '/v1/traces', 'an endpoint without a path gets /v1/traces');
  const [s] = server(r.spans);
  const [c] = client(r.spans);
  assert.ok(s && c, 'parent-based: the sampled flag wins over sample_ratio 0');
  assert.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(s.parentSpanId, '00f067aa0ba902b7');
  assert.equal(s.traceState, 'vendor=abc');
  const h = up.requests[0]!.headers;
  assert.equal(h.tracestate, 'vendor=abc');
  assert.equal(h.traceparent, formatTraceparent(s.traceId, c.spanId, true));
  await waitFor(() => u.access.length === 1, 2000, 'access log');
  assert.equal(u.access[0]!.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
});

test('an invalid traceparent starts a new trace and its tracestate is dropped', async (t) => {
  const r = await receiver(t);
  const { up, u } = await traced(t, r.url);
  const invalid = [
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero parent id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // version 00 with more
    'garbage',
  ];
  for (const tp of invalid) await request(`${u.url}/`, { headers: { traceparent: tp, tracestate: 'vendor=abc' } });
  await flush(u);
  const servers = server(r.spans);
  assert.equal(servers.length, invalid.length);
  for (const [i, s] of servers.entries()) {
    assert.notEqual(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', invalid[i]);
    assert.equal(s.parentSpanId, undefined);
    const h = up.requests[i]!.headers;
    assert.equal(h.tracestate, undefined, 'a tracestate of another trace does not go upstream');
    assert.equal(parseTraceparent(h.traceparent as string)?.traceId, servers.find((x) => x.attributes['usher.request_id'] === h['x-request-id'])!.traceId);
  }
  // A later version may carry more after a "-" (W3C §3.2.4): continued.
  await request(`${u.url}/`, { headers: { traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future' } });
  await flush(u);
  assert.equal(server(r.spans).at(-1)!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
});

test('unsampled: an incoming traceparent with the flag off goes upstream untouched; sample_ratio 0 still propagates a new trace, flag off; nothing is exported', async (t) => {
  const r = await receiver(t);
  const { up, u } = await traced(t, r.url, { sample_ratio: 0 });
  const incoming = formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', false);
  await request(`${u.url}/`, { headers: { traceparent: incoming } });
  await request(`${u.url}/`);
  await flush(u);
  assert.equal(r.spans.length, 0);
  assert.equal(up.requests[0]!.headers.traceparent, incoming);
  const started = parseTraceparent(up.requests[1]!.headers.traceparent as string);
  assert.ok(started !== undefined && !started.sampled);
  await waitFor(() => u.access.length === 2, 2000, 'access log');
  assert.equal(u.access[0]!.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(u.access[1]!.trace_id, started.traceId);
});

test('incoming: trusted_proxies — a traceparent from an untrusted client starts a new trace (it cannot force sampling)', async (t) => {
  const r = await receiver(t);
  const { up, u } = await traced(t, r.url, { incoming: 'trusted_proxies', sample_ratio: 0 });
  await request(`${u.url}/`, { headers: { traceparent: formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', true) } });
  await flush(u);
  assert.equal(r.spans.length, 0, 'the client asked for sampling; sample_ratio 0 decided');
  const tp = parseTraceparent(up.requests[0]!.headers.traceparent as string)!;
  assert.notEqual(tp.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(tp.sampled, false);
});

test('retries are visible: a failed connection and a retried 503 are client spans with errors, the final try counts resends', async (t) => {
  const r = await receiver(t);
  const dead = await closedPort();
  const flaky = await startFlaky('f');
  flaky.status = 503;
  const good = await startUpstream('good');
  t.after(async () => {
    await flaky.close();
    await good.close();
  });
  const { u } = await traced(t, r.url, {}, [`http://127.0.0.1:${dead}`, flaky.url, good.url], {});
  // round robin from the first server: dead (connect error), flaky (503, retried), good.
  const res = await request(`${u.url}/x`);
  assert.equal(res.status, 200);
  await flush(u);
  const [s] = server(r.spans);
  const tries = client(r.spans).sort((a, b) => Number(a.start - b.start));
  assert.equal(tries.length, 3);
  for (const c of tries) assert.equal(c.parentSpanId, s!.spanId);
  assert.deepEqual(
    tries.map((c) => [c.attributes['server.port'], c.status, c.attributes['error.type'] ?? null, c.attributes['http.response.status_code'] ?? null, c.attributes['http.request.resend_count'] ?? 0]),
    [
      [dead, 2, 'upstream_connect_refused', null, 0],
      [flaky.port, 2, '503', 503, 1],
      [good.port, 0, null, 200, 2],
    ],
  );
  assert.equal(s!.attributes['usher.attempts'], 3);
  assert.equal(s!.status, 0);
});

test('an upstream that cannot be reached: the client span and the server span are errors with the reason code', async (t) => {
  const r = await receiver(t);
  const dead = await closedPort();
  const { u } = await traced(t, r.url, {}, [`http://127.0.0.1:${dead}`]);
  const res = await request(`${u.url}/`);
  assert.equal(res.status, 502);
  await flush(u);
  const [s] = server(r.spans);
  const [c] = client(r.spans);
  assert.equal(c!.status, 2);
  assert.equal(c!.attributes['error.type'], 'upstream_connect_refused');
  assert.equal(s!.status, 2);
  assert.equal(s!.attributes['error.type'], 'upstream_connect_refused');
  assert.equal(s!.attributes['http.response.status_code'], 502);
});

test('a local reply has a server span and no client span; a 404 is not a server error', async (t) => {
  const r = await receiver(t);
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ match: { path: '/app' }, upstream: 'app' }], tracing: { otlp: { endpoint: r.url }, flush_interval: '20ms' } });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  assert.equal((await request(`${u.url}/nothing`)).status, 404);
  // Exported by the flush interval, without a flush call.
  await waitFor(() => r.spans.length === 1, 5000, 'the span');
  assert.equal(r.spans[0]!.kind, 2);
  assert.equal(r.spans[0]!.status, 0);
  assert.equal(r.spans[0]!.attributes['usher.reason'], 'no_route');
});

test('a dead collector does not hurt serving: requests succeed, the lost spans are counted', async (t) => {
  const dead = await closedPort();
  const { u } = await traced(t, `http://127.0.0.1:${dead}/v1/traces`, { max_batch: 2 });
  for (let i = 0; i < 6; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  await flush(u);
  const counts = u.usher.tracer!.counts;
  assert.equal(counts.exported, 0);
  assert.equal(counts.failed, 12);
  await waitFor(() => u.logs.some((l) => String(l.msg).startsWith('tracing: spans could not be exported')), 2000, 'the warning');
  assert.equal(u.logs.filter((l) => String(l.msg).startsWith('tracing: spans could not be exported')).length, 1, 'one warning, not one per export');
});

test('a collector that hangs: exports time out, the queue is bounded and drops are counted, requests are not held', async (t) => {
  const r = await receiver(t);
  r.mode = 'hang';
  const { u } = await traced(t, r.url, { otlp: { endpoint: r.url, timeout: '200ms' }, max_queue: 4, max_batch: 2 });
  for (let i = 0; i < 10; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  const tracer = u.usher.tracer!;
  await waitFor(() => tracer.counts.dropped > 0, 5000, 'drops');
  await flush(u);
  const c = tracer.counts;
  assert.equal(c.exported, 0);
  assert.equal(c.exported + c.failed + c.dropped + c.queued, 20, 'every span is accounted for');
  assert.ok(c.failed > 0, 'the hanging exports timed out');
});

test('a collector that answers 503 with Retry-After, then 200: the same spans are sent again after the wait and exported, none lost', async (t) => {
  const r = await receiver(t);
  r.answers = [503];
  r.retryAfter = '1';
  const { u } = await traced(t, r.url, { max_batch: 2 });
  assert.equal((await request(`${u.url}/`)).status, 200);
  // No flush: the exporter's own timers send the retry.
  const tracer = u.usher.tracer!;
  await waitFor(() => tracer.counts.exported === 2, 20_000, 'the retried export');
  assert.deepEqual({ ...tracer.counts }, { exported: 2, dropped: 0, failed: 0, retried: 2, queued: 0 });
  assert.deepEqual(r.exports.map((e) => [e.status, e.spans]), [[503, 2], [200, 2]]);
  assert.deepEqual(r.exports[1]!.spanIds, r.exports[0]!.spanIds, 'the retry sends the same spans');
  assert.equal(server(r.spans).length, 1);
  assert.ok(u.logs.some((l) => /answered 503 \(send 1 of at most 5: retrying in 1000 ms\)/.test(String(l.problem))), JSON.stringify(u.logs));
});

test('a collector that is down, then up on the same port: the network error is retried with backoff and the spans arrive', async (t) => {
  const dead = await closedPort();
  const { u } = await traced(t, `http://127.0.0.1:${dead}/v1/traces`, { max_batch: 2 });
  assert.equal((await request(`${u.url}/`)).status, 200);
  await waitFor(() => u.logs.some((l) => /retrying in \d+ ms/.test(String(l.problem))), 10_000, 'a failed first send');
  const r = await startOtlpReceiver(dead);
  t.after(() => r.close());
  const tracer = u.usher.tracer!;
  // The 5 sends of a batch span 7-22 s of backoff; a loaded machine once saw none of the
  // spans in 30 s: the wait says where the batch stood if it fails again.
  await waitFor(() => tracer.counts.exported === 2 || tracer.counts.failed > 0, 60_000, 'the spans, once the collector is up').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(tracer.counts)}, receiver got ${r.exports.length} exports; logs: ${JSON.stringify(u.logs.slice(-5))}`);
  });
  assert.equal(tracer.counts.exported, 2, `${JSON.stringify(tracer.counts)}; logs: ${JSON.stringify(u.logs.slice(-5))}`);
  assert.equal(tracer.counts.failed, 0);
  assert.ok(tracer.counts.retried >= 2);
  assert.equal(server(r.spans).length, 1);
});

test('a collector that keeps answering 503: the batch waiting for its retry counts within max_queue; after the last send its spans fail', async (t) => {
  const r = await receiver(t);
  r.mode = 503;
  r.retryAfter = '30';
  const { u } = await traced(t, r.url, { max_queue: 4, max_batch: 2 });
  for (let i = 0; i < 10; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  const tracer = u.usher.tracer!;
  // The first batch (2 spans) went at once and waits 30 s for its retry; the next 2 wait in the
  // queue; the other 16 did not fit.
  await waitFor(() => r.exports.length === 1 && tracer.counts.queued === 4, 10_000, 'the first batch refused');
  assert.deepEqual({ ...tracer.counts }, { exported: 0, dropped: 16, failed: 0, retried: 0, queued: 4 });
  // flush() (as close does) sends without waiting: each batch MAX_ATTEMPTS times, then its spans fail.
  await flush(u);
  assert.deepEqual({ ...tracer.counts }, { exported: 0, dropped: 16, failed: 4, retried: 2 * 2 * (MAX_ATTEMPTS - 1), queued: 0 }, 'each resend counts its 2 spans');
  assert.equal(r.exports.length, 2 * MAX_ATTEMPTS);
});

test('the retry delay: Retry-After in seconds or as a date (at most 60 s), else a doubling backoff with jitter (unit)', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  assert.equal(retryDelay(1, '3', now), 3000);
  assert.equal(retryDelay(1, ' 0 ', now), 0);
  assert.equal(retryDelay(1, 'Thu, 03 Dec 2026 12:00:07 GMT', now), 7000);
  assert.equal(retryDelay(1, 'Thu, 03 Dec 2026 11:00:00 GMT', now), 0, 'a date in the past: at once');
  assert.equal(retryDelay(1, '3600', now), 60_000, 'capped');
  assert.equal(retryDelay(1, 'soon', now, 0.5), 1000, 'unparseable: the backoff');
  assert.equal(retryDelay(1, undefined, now, 0.5), 1000);
  assert.equal(retryDelay(2, undefined, now, 0.5), 2000);
  assert.equal(retryDelay(3, undefined, now, 0), 3200);
  assert.equal(retryDelay(3, undefined, now, 0.999_999), 4800);
  assert.equal(retryDelay(20, undefined, now, 0.5), 30_000, 'capped');
});

test('a collector that refuses (HTTP 400): counted as failed', async (t) => {
  const r = await receiver(t);
  r.mode = 400;
  const { u } = await traced(t, r.url);
  await request(`${u.url}/`);
  await flush(u);
  assert.deepEqual({ ...u.usher.tracer!.counts }, { exported: 0, dropped: 0, failed: 2, retried: 0, queued: 0 }, 'a 400 is not retried');
  assert.equal(r.exports.length, 1);
});

test('tracing off: a client traceparent goes upstream untouched and the access log has trace_id null', async (t) => {
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  assert.equal(u.usher.tracer, null);
  await request(`${u.url}/`, { headers: { traceparent: 'garbage', tracestate: 'a=b' } });
  assert.equal(up.requests[0]!.headers.traceparent, 'garbage');
  assert.equal(up.requests[0]!.headers.tracestate, 'a=b');
  await waitFor(() => u.access.length === 1, 2000, 'access log');
  assert.equal(u.access[0]!.trace_id, null);
});

test('a reload adds, changes and removes tracing', async (t) => {
  const r = await receiver(t);
  const up = await startUpstream('app');
  const base = { upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] };
  const u = await startUsher(base);
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const { config } = await import('../helpers/usher.js');
  await u.usher.reload(config({ ...base, tracing: { otlp: { endpoint: r.url }, service_name: 'one' } }));
  await waitFor(() => u.usher.tracer !== null, 2000, 'the tracer');
  await request(`${u.url}/`);
  await flush(u);
  assert.equal(r.spans.length, 2);
  assert.equal(r.spans[0]!.resource['service.name'], 'one');
  await u.usher.reload(config({ ...base, tracing: { otlp: { endpoint: r.url }, service_name: 'two' } }));
  await waitFor(() => u.usher.tracer?.config.service_name === 'two', 2000, 'the new tracer');
  await request(`${u.url}/`);
  await flush(u);
  assert.equal(r.spans.at(-1)!.resource['service.name'], 'two');
  await u.usher.reload(config(base));
  assert.equal(u.usher.tracer, null);
  await request(`${u.url}/`);
  assert.equal(up.requests.at(-1)!.headers.traceparent, undefined);
});

test('traceparent parsing and span times (unit)', () => {
  assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', sampled: false });
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g'), undefined);
  assert.equal(parseTraceparent('00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01, 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03')?.sampled, true, 'other flag bits are ignored');
  assert.equal(unixNanos(0.5, 1_700_000_000_000), '1700000000000500000');
  assert.equal(unixNanos(0.9999999, 1_700_000_000_000), '1700000000001000000');
});

test('the admin API shows the span accounting: /metrics and /status', async (t) => {
  const r = await receiver(t);
  const { u } = await traced(t, r.url, {}, undefined, { admin: { address: '127.0.0.1:0' } });
  const { admin } = await import('../helpers/admin.js');
  await request(`${u.url}/`);
  await flush(u);
  const m = await admin(u, 'GET', '/metrics');
  assert.match(m.body, /^usher_tracing_spans_total\{result="exported"\} 2$/m);
  assert.match(m.body, /^usher_tracing_spans_total\{result="dropped"\} 0$/m);
  assert.match(m.body, /^usher_tracing_queued_spans 0$/m);
  const s = await admin(u, 'GET', '/status');
  assert.deepEqual(s.json.tracing, { endpoint: `${r.url}/v1/traces`, sample_ratio: 1, spans: { exported: 2, dropped: 0, failed: 0, retried: 0, queued: 0 } });
});
