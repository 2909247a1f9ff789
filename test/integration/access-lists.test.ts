// IP access lists (issue #13 part 1) over real sockets: a listener's list closes a denied
// client's connection at accept, before any HTTP; from a trusted proxy it judges each request on
// the forwarded address instead (403 access_denied, the connection stays open); a route's list
// answers 403 access_denied. IPv4, IPv6 and IPv4-mapped clients; every denial in the access log.
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CERT_FILE, KEY_FILE, PREFACE } from '../helpers/h2.js';
import { test } from 'node:test';
import type { AccessConfig, UsherConfig } from '../../src/config/types.js';
import { join } from 'node:path';
import { runCli, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { assertLocalReply } from '../helpers/raw.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

interface Outcome {
  /** Everything the server sent. */
  received: string;
  /** How the connection ended: the server closed it (FIN/RST), or we did after a reply. */
  error: string | undefined;
}

/** Connects to host:port, sends one request and waits until the server closes the connection. */
function exchange(host: string, port: number, data: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let received = '';
    let error: string | undefined;
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ received, error }));
    socket.on('connect', () => socket.write(data));
  });
}

const GET = (extra = '') => `GET /x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n${extra}\r\n`;

async function setup(t: { after(fn: () => Promise<void>): void }, settings: Record<string, unknown>): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], ...settings });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

test('listener access, IPv4: a denied peer is closed before any HTTP, an allowed one is served; the denial is logged', async (t) => {
  const denied = await setup(t, { listeners: [{ address: '127.0.0.1:0', access: { deny: ['127.0.0.0/8'] } }] });
  const out = await exchange('127.0.0.1', denied.u.port, GET());
  assert.equal(out.received, '', 'not a byte of HTTP');
  assert.equal(denied.up.requests.length, 0);
  await waitFor(() => denied.u.access.length > 0, 5000, 'the access-log line');
  assert.equal(denied.u.access[0]!.reason, 'access_denied');
  assert.equal(denied.u.access[0]!.status, 0);
  assert.equal(denied.u.access[0]!.client, '127.0.0.1');
  assert.match(String(denied.u.access[0]!.detail), /deny 127\.0\.0\.0\/8/);

  const allowed = await setup(t, { listeners: [{ address: '127.0.0.1:0', access: { rules: [{ deny: '10.0.0.0/8' }, { allow: '127.0.0.1' }] } }] });
  const ok = await exchange('127.0.0.1', allowed.u.port, GET());
  assert.match(ok.received, /^HTTP\/1\.1 200 /);
  assert.equal(allowed.up.requests.length, 1);
});

test('listener access: a TLS listener closes a denied peer before the handshake, an HTTP/2 one before the preface is read', async (t) => {
  const tls = await setup(t, { listeners: [{ address: '127.0.0.1:0', tls: { cert: CERT_FILE, key: KEY_FILE }, http2: {}, access: { deny: '127.0.0.1' } }] });
  const handshake = await new Promise<{ secure: boolean; error: string | undefined }>((resolve) => {
    let secure = false;
    let error: string | undefined;
    const s = tlsConnect({ host: '127.0.0.1', port: tls.u.port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] });
    s.on('secureConnect', () => (secure = true));
    s.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    s.on('close', () => resolve({ secure, error }));
  });
  assert.equal(handshake.secure, false, 'no TLS handshake');
  assert.ok(handshake.error !== undefined, 'the client sees the connection cut');
  const h2c = await setup(t, { listeners: [{ address: '127.0.0.1:0', http2: {}, access: { deny: '127.0.0.0/8' } }] });
  assert.equal((await exchange('127.0.0.1', h2c.u.port, PREFACE.toString('latin1'))).received, '', 'no SETTINGS frame, nothing');
  await waitFor(() => tls.u.access.length > 0 && h2c.u.access.length > 0, 5000, 'the access-log lines');
  assert.equal(tls.u.access[0]!.reason, 'access_denied');
  assert.equal(h2c.u.access[0]!.reason, 'access_denied');
  assert.equal(tls.up.requests.length + h2c.up.requests.length, 0);
});

test('listener access: first match wins, and the default applies when nothing matches', async (t) => {
  // 127.0.0.1 is allowed by the first rule before the broader deny.
  const first = await setup(t, { listeners: [{ address: '127.0.0.1:0', access: { rules: [{ allow: '127.0.0.1/32' }, { deny: '127.0.0.0/8' }] } }] });
  assert.match((await exchange('127.0.0.1', first.u.port, GET())).received, /^HTTP\/1\.1 200 /);
  // An allow list that does not name the client: the default is deny.
  const list = await setup(t, { listeners: [{ address: '127.0.0.1:0', access: { allow: ['10.0.0.0/8', '2001:db8::/32'] } }] });
  assert.equal((await exchange('127.0.0.1', list.u.port, GET())).received, '');
  await waitFor(() => list.u.access.length > 0, 5000, 'the access-log line');
  assert.match(String(list.u.access[0]!.detail), /default deny/);
  // An explicit default that lets the unmatched through.
  const open = await setup(t, { listeners: [{ address: '127.0.0.1:0', access: { rules: [{ allow: '10.0.0.0/8' }], default: 'allow' } }] });
  assert.match((await exchange('127.0.0.1', open.u.port, GET())).received, /^HTTP\/1\.1 200 /);
});

test('listener access, IPv6: ::1 is judged by IPv6 rules', async (t) => {
  const denied = await setup(t, { listeners: [{ address: '[::1]:0', access: { deny: '::1/128' } }] });
  assert.equal((await exchange('::1', denied.u.port, GET())).received, '');
  await waitFor(() => denied.u.access.length > 0, 5000, 'the access-log line');
  assert.equal(denied.u.access[0]!.reason, 'access_denied');
  assert.equal(denied.u.access[0]!.client, '::1');
  // IPv4 rules say nothing about an IPv6 client: the deny list's default (allow) applies.
  const v4only = await setup(t, { listeners: [{ address: '[::1]:0', access: { deny: '0.0.0.0/0' } }] });
  assert.match((await exchange('::1', v4only.u.port, GET())).received, /^HTTP\/1\.1 200 /);
});

test('listener access, IPv4-mapped: an IPv4 client of a dual-stack listener (::ffff:127.0.0.1) matches IPv4 rules only', async (t) => {
  const denied = await setup(t, { listeners: [{ address: '[::]:0', access: { deny: '127.0.0.0/8' } }] });
  assert.equal((await exchange('127.0.0.1', denied.u.port, GET())).received, '');
  await waitFor(() => denied.u.access.length > 0, 5000, 'the access-log line');
  assert.equal(denied.u.access[0]!.client, '::ffff:127.0.0.1');
  assert.equal(denied.u.access[0]!.reason, 'access_denied');
  // ... but an IPv6 client on the same listener is not touched by the IPv4 rule.
  assert.match((await exchange('::1', denied.u.port, GET())).received, /^HTTP\/1\.1 200 /);

  // An IPv6 rule for "every IPv6 address" does not catch IPv4 clients shown as ::ffff:a.b.c.d.
  const v6all = await setup(t, { listeners: [{ address: '[::]:0', access: { deny: '::/0' } }] });
  assert.match((await exchange('127.0.0.1', v6all.u.port, GET())).received, /^HTTP\/1\.1 200 /);
  assert.equal((await exchange('::1', v6all.u.port, GET())).received, '');

  // A rule written as an IPv4-mapped range is the IPv4 range it maps.
  const mapped = await setup(t, { listeners: [{ address: '[::]:0', access: { deny: '::ffff:127.0.0.0/104' } }] });
  assert.equal((await exchange('127.0.0.1', mapped.u.port, GET())).received, '');
});

test('listener access behind a trusted proxy: the peer passes accept, each request is judged on the forwarded address (403, connection kept)', async (t) => {
  const { up, u } = await setup(t, {
    listeners: [{ address: '127.0.0.1:0', access: { allow: ['10.0.0.0/8', '2001:db8::/32'] } }],
    proxy: { trusted_proxies: ['127.0.0.1'] },
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const sockets = new Set<unknown>();
  agent.on('free', (s) => sockets.add(s));
  const send = (xff?: string) => request(`${u.url}/x`, { agent, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });

  assert.equal((await send('10.1.2.3')).status, 200);
  const denied = await send('203.0.113.9');
  assert.equal(denied.status, 403);
  assert.match(denied.body, /reason: access_denied/);
  assert.ok(denied.headers['x-request-id'], 'the denial carries the request id');
  // The right-most untrusted address decides: a client cannot hide behind a forged left entry.
  assert.equal((await send('10.9.9.9, 203.0.113.9')).status, 403);
  assert.equal((await send('2001:db8::7')).status, 200);
  assert.equal((await send('::ffff:10.0.0.5')).status, 200, 'an IPv4-mapped forwarded address matches IPv4 rules');
  assert.equal((await send('10.0.0.6:51234')).status, 200, 'an address with a port, as some proxies write it');
  assert.equal((await send('not-an-address')).status, 403, 'what is not an address is denied');
  // Without X-Forwarded-For the proxy speaks for itself, and 127.0.0.1 is not on the list.
  assert.equal((await send()).status, 403);
  assert.equal(sockets.size, 1, 'every request on one kept-alive connection: a denial does not close it');
  assert.equal(up.requests.length, 4);

  await waitFor(() => u.access.length >= 8, 5000, 'the access-log lines');
  const deniedLines = u.access.filter((l) => l.reason === 'access_denied');
  assert.equal(deniedLines.length, 4);
  for (const l of deniedLines) assert.equal(l.status, 403);
  assert.deepEqual(
    deniedLines.map((l) => [l.client, l.client_address]),
    [
      ['127.0.0.1', '203.0.113.9'],
      ['127.0.0.1', '203.0.113.9'],
      ['127.0.0.1', 'not-an-address'],
      ['127.0.0.1', '127.0.0.1'],
    ],
    'the log names the client that was judged',
  );
});

test('route access: 403 access_denied for a denied client, other routes untouched; trusted-proxy and IPv6 clients', async (t) => {
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '[::]:0' }],
    upstreams: { app: { servers: [up.url] } },
    proxy: { trusted_proxies: ['::1'] },
    routes: [
      { name: 'admin', match: { path: '/admin' }, upstream: 'app', access: { allow: ['192.0.2.0/24', '2001:db8::/32'] } },
      { name: 'v4-denied', match: { path: '/v4' }, upstream: 'app', access: { deny: '127.0.0.1' } },
      { name: 'open', upstream: 'app' },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const v4 = `http://127.0.0.1:${u.port}`;
  const v6 = `http://[::1]:${u.port}`;

  const denied = await exchange('127.0.0.1', u.port, 'GET /admin HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
  assertLocalReply(denied.received, 403, 'access_denied', 'route denial');
  assert.equal((await request(`${v4}/open`)).status, 200);
  // ::ffff:127.0.0.1 (the dual-stack listener's view of an IPv4 client) matches the IPv4 rule.
  assert.equal((await request(`${v4}/v4`)).status, 403);
  assert.equal((await request(`${v6}/v4`)).status, 200, 'an IPv6 client is not matched by the IPv4 rule');
  // ::1 is a trusted proxy: its forwarded address is judged.
  assert.equal((await request(`${v6}/admin`, { headers: { 'x-forwarded-for': '192.0.2.44' } })).status, 200);
  assert.equal((await request(`${v6}/admin`, { headers: { 'x-forwarded-for': '2001:db8::1' } })).status, 200);
  assert.equal((await request(`${v6}/admin`, { headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 403);
  // From an untrusted peer X-Forwarded-For is ignored: 127.0.0.1 is judged, not the forged value.
  assert.equal((await request(`${v4}/admin`, { headers: { 'x-forwarded-for': '192.0.2.44' } })).status, 403);
  assert.equal(up.requests.filter((r) => r.url === '/admin').length, 2);

  await waitFor(() => u.access.length >= 8, 5000, 'the access-log lines');
  const lines = u.access.filter((l) => l.reason === 'access_denied');
  assert.equal(lines.length, 4);
  for (const l of lines) {
    assert.equal(l.status, 403);
    assert.ok(l.route === 'admin' || l.route === 'v4-denied');
  }
});

test('listener access follows a reload: added, changed and removed', async (t) => {
  const { u } = await setup(t, {});
  assert.match((await exchange('127.0.0.1', u.port, GET())).received, /^HTTP\/1\.1 200 /);
  const next = (access: AccessConfig | undefined): UsherConfig => ({ ...u.config, listeners: u.config.listeners.map((l) => ({ ...l, ...(access === undefined ? {} : { access }) })) });
  const denyAll: AccessConfig = { rules: [], default: 'deny' };
  await u.usher.reload(next(denyAll));
  assert.equal((await exchange('127.0.0.1', u.port, GET())).received, '');
  await u.usher.reload(next({ rules: [{ action: 'allow', cidr: '127.0.0.1/32' }], default: 'deny' }));
  assert.match((await exchange('127.0.0.1', u.port, GET())).received, /^HTTP\/1\.1 200 /);
  await u.usher.reload(next(denyAll));
  await u.usher.reload(next(undefined));
  assert.match((await exchange('127.0.0.1', u.port, GET())).received, /^HTTP\/1\.1 200 /);
});

test('usher explain shows the access decision for a client: listener (at accept or per request) and route', { timeout: 120_000 }, async (t) => {
  const file = writeFile(
    join(tempDir(t), 'usher.yaml'),
    `listeners:
  - address: 127.0.0.1:8080
    access: { allow: [10.0.0.0/8, 127.0.0.1] }
proxy: { trusted_proxies: [127.0.0.1] }
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
  - name: admin
    match: { path: /admin }
    upstream: app
    access:
      rules: [{ deny: 10.9.0.0/16 }, { allow: 10.0.0.0/8 }]
`,
  );
  const viaProxy = await runCli(['explain', '--config', file, 'GET', 'http://a.test/admin', '-H', 'X-Forwarded-For: 10.9.1.1']);
  assert.equal(viaProxy.code, 0, viaProxy.stderr);
  assert.match(viaProxy.stdout, /access: listener 127\.0\.0\.1:8080: client 10\.9\.1\.1 allowed by "allow 10\.0\.0\.0\/8", per request \(the peer is a trusted proxy\)/);
  assert.match(viaProxy.stdout, /access: route admin: client 10\.9\.1\.1 denied by "deny 10\.9\.0\.0\/16", 403 access_denied/);
  assert.match(viaProxy.stdout, /answered by access: 403/);

  const direct = await runCli(['explain', '--config', file, '--json', '--client-ip', '192.0.2.1', 'GET', 'http://a.test/admin', '-H', 'X-Forwarded-For: 10.1.1.1']);
  const e = JSON.parse(direct.stdout) as { access: { scope: string; client: string; decision: string; rule: string; effect: string }[] };
  assert.deepEqual(e.access, [
    { scope: 'listener 127.0.0.1:8080', client: '192.0.2.1', decision: 'deny', rule: 'default deny', effect: 'at accept: the connection is closed' },
    { scope: 'route admin', client: '192.0.2.1', decision: 'deny', rule: 'default deny', effect: '403 access_denied' },
  ]);
});
