// GET /metrics (issue #15 pt 2) parsed by a small Prometheus text-format parser written here,
// and checked against the traffic each test sent: exact counts. With metrics off nothing
// subscribes and nothing is bound.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { CHANNELS } from '../../src/observability/events.js';
import { admin } from '../helpers/admin.js';
import { certDir, httpsGet } from '../helpers/certs.js';
import { rawRequest, request } from '../helpers/client.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

/** The Prometheus text exposition format (0.0.4): # HELP / # TYPE lines and `name{l="v",...} value` samples. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      assert.ok(m, `bad comment line: ${line}`);
      if (m[1] === 'TYPE') {
        assert.match(m[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.ok(!types.has(m[2]!), `TYPE twice for ${m[2]}`);
        types.set(m[2]!, m[3]!);
      } else help.set(m[2]!, m[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest !== '') {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/.exec(rest);
      assert.ok(l, `bad labels in: ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    // Go's strconv.ParseFloat, as Prometheus reads it: Inf and NaN in any case (prom-client writes "Nan").
    const v = m[3]!.toLowerCase();
    const value = v === '+inf' || v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : Number(v);
    assert.ok(!Number.isNaN(value) || v === 'nan', `bad value in: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  // Every sample belongs to a family with a TYPE (histograms: _bucket, _sum, _count).
  for (const s of samples) {
    const family = types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `no TYPE for ${s.name}`);
  }
  return { types, help, samples };
}

async function scrape(u: TestUsher): Promise<Exposition & { get(name: string, labels?: Record<string, string>): number; all(name: string, labels?: Record<string, string>): Sample[] }> {
  const r = await admin(u, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const e = parseExposition(r.body);
  const all = (name: string, labels: Record<string, string> = {}) => e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    ...e,
    all,
    /** The sum of the samples that match (0 when none). */
    get: (name, labels = {}) => all(name, labels).reduce((n, s) => n + s.value, 0),
  };
}

/** A histogram's series is consistent: cumulative buckets, +Inf equals _count. */
function checkHistogram(m: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string>, count: number): void {
  const buckets = m.all(`${name}_bucket`, labels);
  assert.ok(buckets.length > 1, `${name} has buckets`);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name} buckets are cumulative`);
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, count, `${name} +Inf`);
  assert.equal(m.get(`${name}_count`, labels), count, `${name}_count`);
  assert.ok(m.get(`${name}_sum`, labels) > 0, `${name}_sum`);
}

test('metrics: requests by route, status class and reason; durations by route and upstream; bytes; connections', { timeout: 120_000 }, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(req.url === '/app/missing' ? 404 : 200, { 'content-type': 'text/plain' }).end('hello'));
  });
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'app', match: { path: '/app' }, upstream: 'app' },
      { name: 'tea', match: { path: '/tea' }, respond: { status: 418, body: 'no' } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  // 7 proxied 200s, 2 proxied 404s, 3 local 418s, 2 unrouted 404s: 14 requests on 14 connections.
  for (let i = 0; i < 7; i++) assert.equal((await request(`${u.url}/app/x`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'body' : undefined })).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await request(`${u.url}/app/missing`)).status, 404);
  for (let i = 0; i < 3; i++) assert.equal((await request(`${u.url}/tea`)).status, 418);
  for (let i = 0; i < 2; i++) assert.equal((await request(`${u.url}/nothing`)).status, 404);
  await waitFor(() => u.access.length === 14, 5000, 'access log lines');

  const m = await scrape(u);
  assert.equal(m.types.get('usher_requests_total'), 'counter');
  assert.equal(m.types.get('usher_request_duration_seconds'), 'histogram');
  assert.equal(m.get('usher_requests_total', { route: 'app', status_class: '2xx', reason: '' }), 7);
  assert.equal(m.get('usher_requests_total', { route: 'app', status_class: '4xx', reason: '' }), 2);
  assert.equal(m.get('usher_requests_total', { route: 'tea', status_class: '4xx', reason: 'local_response' }), 3);
  assert.equal(m.get('usher_requests_total', { route: '', status_class: '4xx', reason: 'no_route' }), 2);
  assert.equal(m.get('usher_requests_total'), 14);
  checkHistogram(m, 'usher_request_duration_seconds', { route: 'app' }, 9);
  checkHistogram(m, 'usher_request_ttfb_seconds', { route: 'app' }, 9);
  checkHistogram(m, 'usher_request_duration_seconds', { route: 'tea' }, 3);
  checkHistogram(m, 'usher_upstream_duration_seconds', { upstream: 'app' }, 9);
  checkHistogram(m, 'usher_upstream_ttfb_seconds', { upstream: 'app' }, 9);
  // Bytes: what the access log counted, request by request.
  const sum = (route: string | null, key: string) => u.access.filter((l) => l.route === route).reduce((n, l) => n + (l[key] as number), 0);
  assert.equal(m.get('usher_downstream_received_bytes_total', { route: 'app' }), sum('app', 'bytes_in'));
  assert.equal(m.get('usher_downstream_sent_bytes_total', { route: 'app' }), sum('app', 'bytes_out'));
  assert.equal(m.get('usher_downstream_sent_bytes_total', { route: 'tea' }), sum('tea', 'bytes_out'));
  // Tries and responses per server.
  assert.equal(m.get('usher_upstream_tries_total', { upstream: 'app', server: up.url }), 9);
  assert.equal(m.get('usher_upstream_responses_total', { upstream: 'app', server: up.url, status_class: '2xx' }), 7);
  assert.equal(m.get('usher_upstream_responses_total', { upstream: 'app', server: up.url, status_class: '4xx' }), 2);
  // Connections: one per request (no keep-alive in the test client), all closed by now.
  const listener = { listener: '127.0.0.1:0', protocol: 'http' };
  assert.equal(m.get('usher_connections_accepted_total', listener), 14);
  await waitFor(() => u.usher.inflight === 0);
  // Gauges and process metrics.
  assert.equal(m.get('usher_inflight_requests'), 0);
  assert.equal(m.get('usher_upstream_server_up', { upstream: 'app', server: up.url }), 1);
  assert.equal(m.get('usher_upstream_server_weight', { upstream: 'app', server: up.url }), 1);
  assert.equal(m.types.get('usher_process_cpu_seconds_total'), 'counter');
  assert.ok(m.get('usher_process_resident_memory_bytes') > 0);
  assert.deepEqual([m.get('usher_reloads_total', { result: 'success' }), m.get('usher_reloads_total', { result: 'failure' })], [0, 0]);
  const open = async () => (await scrape(u)).get('usher_connections_open', listener);
  for (let i = 0; i < 200 && (await open()) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await open(), 0);
});

test('metrics: connect errors, retries, circuit-breaker refusals and ejections, as the traffic caused them', { timeout: 120_000 }, async (t) => {
  const dead = await closedPort();
  const live = await startUpstream('live');
  const hold: (() => void)[] = [];
  const slow = await startUpstream('slow', (req, res) => {
    req.resume();
    hold.push(() => res.writeHead(200).end('slow'));
  });
  const deadUrl = `http://127.0.0.1:${dead}`;
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: {
      flaky: { servers: [deadUrl, live.url], balance: 'round_robin', outlier_detection: { consecutive_connect_failures: 2 } },
      narrow: { servers: [slow.url], circuit_breaker: { max_requests: 1, max_pending: 0 } },
    },
    routes: [
      { name: 'flaky', match: { path: '/f' }, upstream: 'flaky' },
      { name: 'narrow', match: { path: '/n' }, upstream: 'narrow' },
    ],
  });
  t.after(async () => {
    for (const h of hold) h();
    await u.close();
    await live.close();
    await slow.close();
  });
  for (let i = 0; i < 6; i++) assert.equal((await request(`${u.url}/f`)).status, 200);
  await waitFor(() => u.access.length === 6);
  const flaky = u.access.filter((l) => l.route === 'flaky');
  const attempts = flaky.reduce((n, l) => n + (l.attempts as number), 0);
  const retried = attempts - flaky.length;
  assert.ok(retried >= 1, 'the dead server was tried');
  // The circuit breaker: one request holds the only slot, the next is refused (503).
  const held = request(`${u.url}/n`);
  await waitFor(() => hold.length === 1, 5000, 'the slow upstream holds a request');
  const refused = await request(`${u.url}/n`);
  assert.equal(refused.status, 503);
  hold.shift()!();
  assert.equal((await held).status, 200);

  const m = await scrape(u);
  assert.equal(m.get('usher_upstream_tries_total', { upstream: 'flaky' }), attempts);
  assert.equal(m.get('usher_upstream_tries_total', { upstream: 'flaky', server: deadUrl }), retried);
  assert.equal(m.get('usher_upstream_connect_errors_total', { upstream: 'flaky', server: deadUrl }), retried);
  assert.equal(m.all('usher_upstream_connect_errors_total', { server: deadUrl })[0]!.labels.reason, 'upstream_connect_refused');
  assert.equal(m.get('usher_upstream_retries_total', { upstream: 'flaky' }), retried);
  assert.equal(m.get('usher_upstream_responses_total', { upstream: 'flaky', server: live.url, status_class: '2xx' }), 6);
  assert.equal(m.get('usher_upstream_overloaded_total', { upstream: 'narrow' }), 1);
  assert.equal(m.get('usher_requests_total', { route: 'narrow', status_class: '5xx', reason: 'upstream_overloaded' }), 1);
  // Two consecutive connect failures eject the dead server once: it is down now.
  const ejections = retried >= 2 ? 1 : 0;
  assert.equal(m.get('usher_upstream_ejections_total', { upstream: 'flaky', server: deadUrl }), ejections);
  assert.equal(m.get('usher_upstream_server_up', { upstream: 'flaky', server: deadUrl }), ejections === 1 ? 0 : 1);
});

test('metrics: active checks by result with their latency, server health state, reloads', { timeout: 120_000 }, async (t) => {
  const good = await startUpstream('good');
  const dead = await closedPort();
  const deadUrl = `http://127.0.0.1:${dead}`;
  const settings = {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [good.url, deadUrl], health_check: { path: '/', interval: '50ms', fall: 1, rise: 1 } } },
    routes: [{ upstream: 'app' }],
  };
  const u = await startUsher(settings);
  t.after(async () => {
    await u.close();
    await good.close();
  });
  const endpoints = u.usher.runtime.clusters.get('app')!.endpoints;
  await waitFor(() => endpoints.every((e) => e.health.lastCheck !== null) && !endpoints[1]!.healthyNow(), 5000, 'both servers probed');
  const m = await scrape(u);
  const ok = m.get('usher_health_checks_total', { upstream: 'app', server: good.url, result: 'ok' });
  const failed = m.get('usher_health_checks_total', { upstream: 'app', server: deadUrl, result: 'failed' });
  assert.ok(ok >= 1 && failed >= 1);
  assert.equal(m.get('usher_health_checks_total', { server: good.url, result: 'failed' }), 0);
  assert.equal(m.get('usher_health_checks_total', { server: deadUrl, result: 'ok' }), 0);
  // Every check's latency is in the histogram (scraped at one moment: the counts agree).
  const checks = m.get('usher_health_checks_total', { upstream: 'app' });
  checkHistogram(m, 'usher_health_check_duration_seconds', { upstream: 'app' }, checks);
  assert.equal(m.get('usher_upstream_server_up', { server: good.url }), 1);
  assert.equal(m.get('usher_upstream_server_up', { server: deadUrl }), 0);
  // Reloads: one applied, one refused.
  await u.usher.reload(config({ ...settings, routes: [{ name: 'again', upstream: 'app' }] }));
  u.usher.reloadRejected('file', 'usher.yaml', ['usher.yaml:1:1: error: bad']);
  const after = await scrape(u);
  assert.equal(after.get('usher_reloads_total', { result: 'success' }), 1);
  assert.equal(after.get('usher_reloads_total', { result: 'failure' }), 1);
});

test('metrics: TLS handshakes, failures and certificate expiry per listener', { timeout: 120_000 }, async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const ca = certs.ca('ca');
  const cert = certs.issue('srv', { cn: 'srv.test', sans: ['DNS:srv.test'], ca, days: 30 });
  const up = await startUpstream('app');
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    listeners: [{ address: '127.0.0.1:0', tls: { cert: cert.certPath, key: cert.keyPath } }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  for (let i = 0; i < 3; i++) assert.equal((await httpsGet(u.port, { servername: 'srv.test', ca: ca.cert })).status, 200);
  // Plain HTTP to the TLS port: a failed handshake.
  await rawRequest(u.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => u.access.length === 3);
  let m = await scrape(u);
  for (let i = 0; i < 200 && m.get('usher_tls_handshake_failures_total') === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    m = await scrape(u);
  }
  assert.equal(m.get('usher_tls_handshakes_total', { listener: '127.0.0.1:0' }), 3);
  assert.equal(m.get('usher_tls_handshake_failures_total', { listener: '127.0.0.1:0' }), 1);
  assert.equal(m.get('usher_connections_accepted_total', { listener: '127.0.0.1:0', protocol: 'https' }), 4);
  const notAfter = Date.parse(new X509Certificate(cert.cert).validTo);
  assert.equal(m.get('usher_tls_certificate_expiry_timestamp_seconds', { listener: '127.0.0.1:0', names: 'srv.test' }), Math.floor(notAfter / 1000));
});

test('metrics: a reload keeps the counts of a route that stays and drops the series of one that goes', { timeout: 120_000 }, async (t) => {
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    routes: [
      { name: 'stays', match: { path: '/s' }, respond: { status: 200, body: 's' } },
      { name: 'goes', match: { path: '/g' }, respond: { status: 200, body: 'g' } },
    ],
  });
  t.after(() => u.close());
  for (let i = 0; i < 2; i++) await request(`${u.url}/s`);
  await request(`${u.url}/g`);
  await u.usher.reload(config({ admin: { address: '127.0.0.1:0' }, routes: [{ name: 'stays', match: { path: '/s' }, respond: { status: 200, body: 's2' } }] }));
  assert.equal((await request(`${u.url}/s`)).body, 's2');
  const m = await scrape(u);
  assert.equal(m.get('usher_requests_total', { route: 'stays' }), 3);
  assert.equal(m.all('usher_requests_total', { route: 'goes' }).length, 0);
});

test('metrics off: nothing subscribes, nothing is bound, /metrics is 404 and /routes has no counters', { timeout: 120_000 }, async (t) => {
  const done = diagnostics.channel(CHANNELS.done);
  const tried = diagnostics.channel(CHANNELS.upstreamTry);
  assert.equal(done.hasSubscribers, false);
  const up = await startUpstream('app');
  const settings = { log: { level: 'warn', access_log: false }, upstreams: { app: { servers: [up.url] } }, routes: [{ name: 'r', upstream: 'app' }] };
  const u = await startUsher({ ...settings, admin: { address: '127.0.0.1:0', metrics: false } });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  assert.equal(u.usher.metrics, null);
  assert.equal(done.hasSubscribers, false);
  assert.equal(tried.hasSubscribers, false);
  assert.equal((await request(`${u.url}/`)).status, 200);
  assert.equal(u.usher.runtime.routes[0]!.meters.value, null);
  assert.equal(u.usher.runtime.clusters.get('app')!.meters, null);
  assert.equal((await admin(u, 'GET', '/metrics')).status, 404);
  assert.equal((await admin(u, 'GET', '/routes')).json.routes[0].counters, null);
  // Turned on by a reload: subscribed from then on, and off again by the next.
  await u.usher.reload(config({ ...settings, admin: { address: '127.0.0.1:0' } }));
  assert.equal(done.hasSubscribers, true);
  assert.equal((await request(`${u.url}/`)).status, 200);
  assert.equal((await scrape(u)).get('usher_requests_total', { route: 'r' }), 1);
  await u.usher.reload(config({ ...settings }));
  assert.equal(u.usher.metrics, null);
  assert.equal(done.hasSubscribers, false);
});
