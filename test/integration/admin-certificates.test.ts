// GET /certificates, ACME certificates in the expiry metric, the queue-time histogram and the
// protocol label on the request metrics (issue #15 pts 1-2).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AcmeStore } from '../../src/tls/acme/store.js';
import { admin } from '../helpers/admin.js';
import { certDir } from '../helpers/certs.js';
import { request } from '../helpers/client.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

test('GET /certificates: file certificates per listener and an ACME one, with names, issuer, validity and source; the expiry metric has both', { timeout: 120_000 }, async (t) => {
  const certs = certDir();
  const storage = mkdtempSync(join(tmpdir(), 'usher-acme-'));
  t.after(() => {
    certs.remove();
    rmSync(storage, { recursive: true, force: true });
  });
  const ca = certs.ca('Test CA');
  const a = certs.issue('a', { cn: 'a.test', sans: ['DNS:a.test', 'DNS:www.a.test'], ca, days: 30 });
  const b = certs.issue('b', { cn: 'b.test', sans: ['DNS:b.test'], ca, days: 10 });
  // An ACME certificate already in storage, valid beyond the renewal window: no order is needed,
  // and the CA (a closed port) is never asked.
  const acmeCert = certs.issue('acme', { cn: 'acme.test', sans: ['DNS:acme.test'], ca, days: 90 });
  new AcmeStore(storage).writeCertificate('acme.test', acmeCert.cert, acmeCert.key);
  const dead = await closedPort();
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    listeners: [
      { address: '127.0.0.1:0', tls: { cert: a.certPath, key: a.keyPath, certificates: [{ cert: b.certPath, key: b.keyPath }] } },
      { address: '127.0.0.1:0' },
    ],
    routes: [{ respond: { body: 'x' } }],
    acme: { domains: ['acme.test', 'pending.test'], directory: `http://127.0.0.1:${dead}/dir`, storage, retry: { min: '1h', max: '1h' } },
  });
  t.after(() => u.close());
  const r = await admin(u, 'GET', '/certificates');
  assert.equal(r.status, 200);
  const list = r.json.certificates as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.deepEqual(list.map((c) => c.names), [['b.test'], ['a.test', 'www.a.test'], ['acme.test']], 'sorted by expiry, soonest first');
  const [cb, caa, cacme] = list as [Record<string, any>, Record<string, any>, Record<string, any>]; // eslint-disable-line @typescript-eslint/no-explicit-any
  const xa = new X509Certificate(a.cert);
  assert.equal(caa.issuer, 'CN=Test CA');
  assert.equal(caa.subject, 'CN=a.test');
  assert.equal(caa.not_after, new Date(xa.validTo).toISOString());
  assert.equal(caa.not_before, new Date(xa.validFrom).toISOString());
  assert.equal(caa.fingerprint_sha256, xa.fingerprint256);
  assert.equal(caa.key_type, 'ec');
  assert.ok(caa.expires_in_days > 29 && caa.expires_in_days <= 30, String(caa.expires_in_days));
  assert.equal(caa.expired, false);
  assert.deepEqual(caa.source, { type: 'file', cert: a.certPath, key: a.keyPath });
  assert.deepEqual(caa.listeners, ['127.0.0.1:0']);
  assert.deepEqual(caa.default_on, ['127.0.0.1:0']);
  assert.deepEqual(cb.default_on, []);
  assert.equal(cacme.source.type, 'acme');
  assert.equal(cacme.source.domain, 'acme.test');
  // Renewed 30 days (renew_before_days) before it expires.
  assert.equal(cacme.source.next_renewal, new Date(Date.parse(cacme.not_after) - 30 * 86_400_000).toISOString());
  assert.deepEqual(r.json.acme_pending.map((p: { domain: string }) => p.domain), ['pending.test']);

  const m = await admin(u, 'GET', '/metrics');
  const expiry = (names: string, source: string) => new RegExp(`^usher_tls_certificate_expiry_timestamp_seconds\\{listener="127\\.0\\.0\\.1:0",names="${names.replace(/\./g, '\\.')}",source="${source}"\\} (\\d+)$`, 'm').exec(m.body)?.[1];
  assert.equal(Number(expiry('a.test,www.a.test', 'file')), Math.floor(Date.parse(xa.validTo) / 1000));
  assert.equal(Number(expiry('acme.test', 'acme')), Math.floor(Date.parse(new X509Certificate(acmeCert.cert).validTo) / 1000), 'ACME certificates are in the expiry metric');
});

test('metrics: the queue time of tries (a circuit breaker queue shows in it) and the protocol label (h1, h2)', { timeout: 120_000 }, async (t) => {
  // An upstream that holds the first request until released: with max_requests 1 the second queues.
  let release: (() => void) | undefined;
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    if (req.url === '/hold') {
      release = () => res.end('held');
      return;
    }
    res.end('ok');
  });
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { app: { servers: [up.url], circuit_breaker: { max_requests: 1, max_pending: 10, queue_timeout: '10s' } } },
    routes: [{ name: 'main', upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const held = request(`${u.url}/hold`);
  await waitFor(() => release !== undefined, 5000, 'the held request');
  const queued = request(`${u.url}/queued`);
  await waitFor(() => u.usher.runtime.clusters.get('app')!.admission!.pending === 1, 5000, 'the queued request');
  // Not a synchronisation: the queued try cannot get its slot before the release, so its wait is 50 ms or more.
  await new Promise((r) => setTimeout(r, 50));
  release!();
  assert.equal((await held).status, 200);
  assert.equal((await queued).status, 200);
  // One request over HTTP/2 (h2c, prior knowledge).
  const session = h2connect(u.url);
  t.after(() => session.close());
  await new Promise<void>((resolve, reject) => {
    const s = session.request({ ':path': '/h2' });
    s.on('response', () => undefined);
    s.resume();
    s.on('end', resolve);
    s.on('error', reject);
  });
  await waitFor(() => u.access.length === 3, 5000, 'three requests done');
  const text = (await admin(u, 'GET', '/metrics')).body;
  const sample = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  assert.equal(sample(/^usher_upstream_queue_seconds_count\{upstream="app"\} (\d+)$/m), 3);
  assert.ok(sample(/^usher_upstream_queue_seconds_sum\{upstream="app"\} (\S+)$/m) >= 0.05, 'the circuit breaker queue is in the queue time');
  assert.equal(sample(/^usher_upstream_queue_seconds_bucket\{upstream="app",le="0\.025"\} (\d+)$/m) <= 2, true, 'the queued try is above 25 ms');
  assert.equal(sample(/^usher_requests_total\{route="main",status_class="2xx",reason="",protocol="h1"\} (\d+)$/m), 2);
  assert.equal(sample(/^usher_requests_total\{route="main",status_class="2xx",reason="",protocol="h2"\} (\d+)$/m), 1);
  assert.equal(sample(/^usher_request_duration_seconds_count\{route="main",protocol="h2"\} (\d+)$/m), 1);
  assert.equal(sample(/^usher_request_duration_seconds_count\{route="main",protocol="h1"\} (\d+)$/m), 2);
  // Series are bound on first use: no 5xx series for a route that never answered one.
  assert.doesNotMatch(text, /usher_requests_total\{route="main",status_class="5xx"/);
  assert.deepEqual((await admin(u, 'GET', '/routes')).json.routes[0].counters, { total: 3, '1xx': 0, '2xx': 3, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 });
});
