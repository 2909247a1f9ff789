// The admin API over real sockets (issue #15 pt 1): auth beyond loopback, every endpoint, drain
// and weight taking effect on live traffic to real upstreams, the admin listener kept and moved
// across reloads, and never reachable through a proxy listener.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, adminUrl } from '../helpers/admin.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { config, startUsher, type TestUsher } from '../helpers/usher.js';

const TOKEN = 'test-admin-token-0123456789';

async function two(t: { after: (fn: () => Promise<void>) => void }, settings: Record<string, unknown> = {}): Promise<{ a: TestUpstream; b: TestUpstream; u: TestUsher }> {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [a.url, b.url], balance: 'round_robin' } },
    routes: [{ name: 'main', upstream: 'app' }],
    ...settings,
  });
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });
  return { a, b, u };
}

/** Which upstream answered each of n requests. */
async function spread(u: TestUsher, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await request(`${u.url}/`);
    assert.equal(r.status, 200);
    seen[r.body] = (seen[r.body] ?? 0) + 1;
  }
  return seen;
}

test('admin: beyond loopback a bearer token is required; wrong or missing tokens get 401', { timeout: 120_000 }, async (t) => {
  const up = await startUpstream('a');
  // 0.0.0.0: every interface, so not loopback; reached here on 127.0.0.1.
  const u = await startUsher({ admin: { address: '0.0.0.0:0', token: TOKEN }, upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const none = await admin(u, 'GET', '/status');
  assert.equal(none.status, 401);
  assert.equal(none.json.error, 'unauthorized');
  assert.match(String(none.headers['www-authenticate']), /^Bearer/);
  assert.equal((await admin(u, 'GET', '/status', { token: 'wrong-token-wrong-token' })).status, 401);
  assert.equal((await admin(u, 'GET', '/metrics', { token: `${TOKEN}x` })).status, 401);
  // Not even a drain goes through without the token.
  const drain = await admin(u, 'POST', `/upstreams/app/servers/${encodeURIComponent(up.url)}/drain`);
  assert.equal(drain.status, 401);
  assert.equal(u.usher.runtime.clusters.get('app')!.endpoints[0]!.drained, false);
  const ok = await admin(u, 'GET', '/status', { token: TOKEN });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.version, '0.1.0');
});

test('admin: the config check refuses a non-loopback address without a token, and a proxy listener address', () => {
  for (const address of ['0.0.0.0:9901', ':9901', '[::]:9901', '192.0.2.1:9901']) {
    assert.throws(() => config({ admin: { address } }), /not a loopback address: the admin API changes what usher serves/);
  }
  assert.throws(() => config({ listeners: [{ address: '127.0.0.1:9000' }], admin: { address: '127.0.0.1:9000' } }), /is the address of listeners\[0\]/);
  assert.throws(() => config({ admin: { address: '127.0.0.1:9901', token: 'short' } }), /at least 16 characters/);
  assert.equal(config({ admin: { address: '127.0.0.1:9901' } }).admin!.token, null);
  assert.equal(config({ admin: { address: '[::1]:9901' } }).admin!.host, '::1');
  assert.equal(config({ admin: { address: ':9901', token: TOKEN } }).admin!.token, TOKEN);
});

test('admin: never reachable through a proxy listener', { timeout: 120_000 }, async (t) => {
  const u = await startUsher({ admin: { address: '127.0.0.1:0' }, routes: [] });
  t.after(() => u.close());
  for (const path of ['/status', '/upstreams', '/metrics', '/config/apply']) {
    const r = await request(`${u.url}${path}`, { method: path === '/config/apply' ? 'POST' : 'GET', body: path === '/config/apply' ? 'routes: []' : undefined });
    assert.equal(r.status, 404, path);
    assert.match(r.body, /no_route/, path);
  }
  assert.equal((await admin(u, 'GET', '/status')).status, 200);
  assert.notEqual(u.usher.admin!.address().port, u.port);
});

test('admin: GET /status, /routes and /upstreams describe the running usher, with exact counters', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await two(t, {
    routes: [
      { name: 'main', match: { path: '/app' }, upstream: 'app' },
      { name: 'teapot', match: { path: '/tea' }, respond: { status: 418, body: 'short and stout' } },
    ],
  });
  for (let i = 0; i < 5; i++) assert.equal((await request(`${u.url}/app/x`)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await request(`${u.url}/tea`)).status, 418);
  assert.equal((await request(`${u.url}/none`)).status, 404);

  const s = await admin(u, 'GET', '/status');
  assert.equal(s.status, 200);
  assert.match(String(s.headers['content-type']), /^application\/json/);
  assert.equal(s.json.version, '0.1.0');
  assert.equal(s.json.pid, process.pid);
  assert.equal(typeof s.json.uptime_seconds, 'number');
  assert.equal(s.json.config.source, '<test>');
  assert.match(s.json.config.hash, /^[0-9a-f]{64}$/);
  assert.equal(s.json.config.routes, 2);
  assert.deepEqual(s.json.listeners, [{ address: '127.0.0.1:0', host: '127.0.0.1', port: u.port, tls: false, http2: false }]);
  assert.equal(s.json.inflight, 0);
  assert.equal(s.json.requests, 9);
  assert.deepEqual(s.json.reloads, []);

  const r = await admin(u, 'GET', '/routes');
  assert.equal(r.status, 200);
  const [main, teapot] = r.json.routes;
  assert.equal(main.name, 'main');
  assert.equal(main.action, 'upstream');
  assert.equal(main.upstream, 'app');
  assert.deepEqual(main.counters, { total: 5, '1xx': 0, '2xx': 5, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 });
  assert.equal(teapot.action, 'respond');
  assert.deepEqual(teapot.counters, { total: 3, '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 3, '5xx': 0, none: 0 });

  const up = await admin(u, 'GET', '/upstreams');
  assert.equal(up.status, 200);
  const [app] = up.json.upstreams;
  assert.equal(app.name, 'app');
  assert.equal(app.balance, 'round_robin');
  assert.deepEqual(app.servers.map((x: { id: string }) => x.id), [a.url, b.url]);
  for (const srv of app.servers) {
    assert.equal(srv.verdict, 'up');
    assert.equal(srv.inflight, 0);
    assert.deepEqual(srv.weight, { configured: 1, effective: 1, overridden: false });
    assert.equal(srv.group, 0);
    assert.equal(srv.ejections, 0);
    assert.equal(srv.last_check, null);
  }

  // Unknown endpoints, wrong methods, and the log files usher does not have.
  assert.equal((await admin(u, 'GET', '/nope')).status, 404);
  const wrong = await admin(u, 'POST', '/status');
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.allow, 'GET');
  const logs = await admin(u, 'POST', '/reopen-logs');
  assert.equal(logs.status, 404);
  assert.match(logs.json.message, /stdout/);
  assert.ok((await admin(u, 'GET', '/')).json.endpoints.includes('GET /status'));
  assert.equal((await admin(u, 'POST', '/upstreams/nope/servers/x/drain')).status, 404);
  assert.equal((await admin(u, 'POST', '/upstreams/app/servers/http%3A%2F%2F127.0.0.1%3A1/drain')).status, 404);
});

test('admin: /upstreams shows the last active check, its latency, a server down and a passive ejection with its reason', { timeout: 120_000 }, async (t) => {
  const good = await startUpstream('good');
  const sick = await startUpstream('sick', (req, res) => {
    req.resume();
    res.writeHead(req.url === '/health' ? 503 : 500).end('no');
  });
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: {
      checked: { servers: [good.url, sick.url], health_check: { path: '/health', interval: '50ms', fall: 1, rise: 1 } },
      passive: { servers: [sick.url, good.url], outlier_detection: { consecutive_5xx: 2 }, retry: { attempts: 0 } },
    },
    routes: [
      { match: { path: '/c' }, upstream: 'checked' },
      { match: { path: '/p' }, upstream: 'passive' },
    ],
  });
  t.after(async () => {
    await u.close();
    await good.close();
    await sick.close();
  });
  const servers = async (name: string) => ((await admin(u, 'GET', '/upstreams')).json.upstreams as { name: string; servers: Record<string, any>[] }[]).find((x) => x.name === name)!.servers; // eslint-disable-line @typescript-eslint/no-explicit-any
  // Active: wait until both servers were probed.
  for (let i = 0; i < 400; i++) {
    const s = await servers('checked');
    if (s.every((x) => x.last_check !== null) && s[1]!.verdict === 'down') break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const [ok, down] = await servers('checked');
  assert.equal(ok!.active, 'up');
  assert.equal(ok!.last_check.ok, true);
  assert.equal(ok!.last_check.detail, 'status 200');
  assert.equal(typeof ok!.last_check.latency_ms, 'number');
  assert.ok(!Number.isNaN(Date.parse(ok!.last_check.at)));
  assert.equal(down!.verdict, 'down');
  assert.equal(down!.healthy, false);
  assert.equal(down!.last_check.detail, 'status 503');
  // Passive: the sick server answers 500 twice (round robin, no retries): ejected, with the reason.
  for (let i = 0; i < 4; i++) await request(`${u.url}/p`);
  const [ejected] = await servers('passive');
  assert.equal(ejected!.verdict, 'ejected');
  assert.equal(ejected!.ejected, true);
  assert.equal(ejected!.ejections, 1);
  assert.match(ejected!.reason, /2 consecutive failures \(last: status 500\)/);
  assert.ok(Date.parse(ejected!.ejected_until) > Date.now());
});

test('admin: drain takes a server out of live traffic (in-flight requests finish), enable takes it back', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await two(t);
  assert.deepEqual(await spread(u, 4), { a: 2, b: 2 });
  const id = encodeURIComponent(b.url);
  const d = await admin(u, 'POST', `/upstreams/app/servers/${id}/drain`);
  assert.equal(d.status, 200);
  assert.equal(d.json.verdict, 'drained');
  assert.equal(d.json.drained, true);
  assert.deepEqual(await spread(u, 6), { a: 6 });
  // By host:port too.
  const e = await admin(u, 'POST', `/upstreams/app/servers/127.0.0.1:${b.port}/enable`);
  assert.equal(e.status, 200);
  assert.equal(e.json.verdict, 'up');
  assert.deepEqual(await spread(u, 4), { a: 2, b: 2 });
  assert.equal(a.requests.length + b.requests.length, 14);
});

test('admin: drain lets a request in flight on the server finish', { timeout: 120_000 }, async (t) => {
  let release: (() => void) | undefined;
  const slow = await startUpstream('slow', (req, res) => {
    req.resume();
    release = () => res.writeHead(200).end('slow');
  });
  const fast = await startUpstream('fast');
  const u = await startUsher({ admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [slow.url, fast.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await slow.close();
    await fast.close();
  });
  const pending = request(`${u.url}/`);
  for (let i = 0; i < 500 && release === undefined; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(release, 'the slow server got the first request');
  const d = await admin(u, 'POST', `/upstreams/app/servers/${encodeURIComponent(slow.url)}/drain`);
  assert.equal(d.json.inflight, 1);
  assert.deepEqual(await spread(u, 3), { fast: 3 });
  release();
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'slow');
});

test('admin: PUT weight changes the split of live traffic, shows as overridden, and lasts until a reload changes the upstream', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await two(t);
  const id = encodeURIComponent(a.url);
  const w = await admin(u, 'PUT', `/upstreams/app/servers/${id}/weight`, { body: '{"weight": 3}' });
  assert.equal(w.status, 200);
  assert.deepEqual(w.json.weight, { configured: 1, effective: 3, overridden: true });
  // Smooth weighted round robin: 3 of every 4 to a.
  assert.deepEqual(await spread(u, 8), { a: 6, b: 2 });
  // Bad weights are refused and change nothing.
  for (const body of ['{"weight": 0}', '{"weight": 1.5}', '{"weight": "2"}', 'weight=2']) {
    const r = await admin(u, 'PUT', `/upstreams/app/servers/${id}/weight`, { body });
    assert.equal(r.status, 400, body);
  }
  // A reload that leaves the upstream as it is keeps the override...
  await u.usher.reload(config({ admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [a.url, b.url], balance: 'round_robin' } }, routes: [{ name: 'other', upstream: 'app' }] }));
  let srv = (await admin(u, 'GET', '/upstreams')).json.upstreams[0].servers[0];
  assert.deepEqual(srv.weight, { configured: 1, effective: 3, overridden: true });
  assert.deepEqual(await spread(u, 8), { a: 6, b: 2 });
  // ...one that changes it ends the override (and a drain).
  await admin(u, 'POST', `/upstreams/app/servers/${encodeURIComponent(b.url)}/drain`);
  await u.usher.reload(config({ admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [a.url, b.url], balance: 'round_robin', panic_threshold: 10 } }, routes: [{ upstream: 'app' }] }));
  srv = (await admin(u, 'GET', '/upstreams')).json.upstreams[0].servers;
  assert.deepEqual(srv[0].weight, { configured: 1, effective: 1, overridden: false });
  assert.equal(srv[1].drained, false);
  assert.deepEqual(await spread(u, 4), { a: 2, b: 2 });
  // null: back to the configured weight.
  await admin(u, 'PUT', `/upstreams/app/servers/${id}/weight`, { body: '{"weight": 2}' });
  const back = await admin(u, 'PUT', `/upstreams/app/servers/${id}/weight`, { body: '{"weight": null}' });
  assert.deepEqual(back.json.weight, { configured: 1, effective: 1, overridden: false });
});

test('admin: a reload keeps the admin listener, applies a new token at once, and moves it to a new address', { timeout: 120_000 }, async (t) => {
  const u = await startUsher({ admin: { address: '127.0.0.1:0' }, routes: [] });
  t.after(() => u.close());
  const first = adminUrl(u);
  // Port 0 is a fresh port each time: a reload with 127.0.0.1:0 moves it.
  const port = await freePort();
  await u.usher.reload(config({ admin: { address: `127.0.0.1:${port}` }, routes: [] }));
  assert.equal(u.usher.admin!.address().port, port);
  assert.equal((await admin(`http://127.0.0.1:${port}`, 'GET', '/status')).status, 200);
  await assert.rejects(request(`${first}/status`), /ECONNREFUSED/);
  // Same address, a token now: the same server, and the token applies.
  const same = u.usher.admin;
  await u.usher.reload(config({ admin: { address: `127.0.0.1:${port}`, token: TOKEN }, routes: [] }));
  assert.equal(u.usher.admin, same);
  assert.equal((await admin(u, 'GET', '/status')).status, 401);
  const s = await admin(u, 'GET', '/status', { token: TOKEN });
  assert.equal(s.json.reloads.length, 2);
  assert.deepEqual(s.json.reloads.map((r: { result: string; source: string }) => `${r.source} ${r.result}`), ['file success', 'file success']);
  // Removed: closed.
  await u.usher.reload(config({ routes: [] }));
  assert.equal(u.usher.admin, null);
  await assert.rejects(request(`http://127.0.0.1:${port}/status`), /ECONNREFUSED/);
});

test('admin: a reload whose admin address cannot be bound fails as a whole; the old config and admin listener stay', { timeout: 120_000 }, async (t) => {
  const u = await startUsher({ admin: { address: '127.0.0.1:0' }, routes: [{ respond: { status: 200, body: 'old' } }] });
  t.after(() => u.close());
  const taken = u.port; // the proxy listener's port
  await assert.rejects(u.usher.reload(config({ admin: { address: `127.0.0.1:${taken}` }, routes: [{ respond: { status: 200, body: 'new' } }] })), /EADDRINUSE/);
  assert.equal((await request(`${u.url}/`)).body, 'old');
  const s = await admin(u, 'GET', '/status');
  assert.equal(s.status, 200);
  assert.equal(s.json.reloads[0].result, 'failure');
  assert.match(s.json.reloads[0].errors[0], /EADDRINUSE/);
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
