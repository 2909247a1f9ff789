import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { test } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, proxyTo } from '../helpers/usher.js';

test('the issue example config: host+path route, respond route, catch-all, round robin', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const u = await startUsher({
    upstreams: { app: { servers: [{ url: a.url }, { url: b.url }] } },
    routes: [
      { match: { host: 'example.test', path: '/api' }, upstream: 'app' },
      { match: { path: '/admin' }, respond: { status: 403, body: 'forbidden\n' } },
      { upstream: 'app' },
    ],
  });
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });

  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await request(`${u.url}/api/users`, { headers: { host: 'example.test' } });
    assert.equal(r.status, 200);
    seen.push(r.body);
  }
  assert.deepEqual(seen.sort(), ['a', 'a', 'b', 'b'], 'round robin spreads over both servers');

  const admin = await request(`${u.url}/admin/panel`);
  assert.equal(admin.status, 403);
  assert.equal(admin.body, 'forbidden\n');
  assert.ok(admin.headers['x-request-id'], 'local answers carry the request id');

  const other = await request(`${u.url}/elsewhere`, { headers: { host: 'other.test' } });
  assert.equal(other.status, 200);
  assert.equal(a.requests.length + b.requests.length, 5);
});

test('no route: 404 with a reason code and request id, as text or JSON', async (t) => {
  const a = await startUpstream('a');
  const u = await startUsher({ upstreams: { app: { servers: [a.url] } }, routes: [{ match: { path: '/only' }, upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  const text = await request(`${u.url}/nope`);
  assert.equal(text.status, 404);
  assert.match(text.body, /reason: no_route/);
  assert.match(text.body, new RegExp(`request_id: ${text.headers['x-request-id']}`));
  const json = await request(`${u.url}/nope`, { headers: { accept: 'application/json' } });
  assert.equal(json.status, 404);
  const body = JSON.parse(json.body) as { reason: string; request_id: string };
  assert.equal(body.reason, 'no_route');
  assert.equal(body.request_id, json.headers['x-request-id']);
  assert.equal(u.access.at(-1)?.reason, 'no_route');
});

test('forwarded headers: set by usher, client values replaced when the peer is not trusted', async (t) => {
  const { up: a, u } = await proxyTo(t, 'a');
  await request(`${u.url}/x`, {
    headers: {
      host: 'site.test',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.test',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-request-id': 'client-chosen',
      via: '1.0 client-proxy',
    },
  });
  const h = a.requests[0]!.headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'site.test');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.equal(h.forwarded, 'for=127.0.0.1;host="site.test";proto=http');
  assert.equal(h.host, 'site.test', 'Host is preserved by default');
  assert.notEqual(h['x-request-id'], 'client-chosen');
  assert.equal(h.via, '1.0 client-proxy, 1.1 usher');
});

test('forwarded headers from a trusted proxy are appended to, and its request id kept', async (t) => {
  const a = await startUpstream('a');
  const u = await startUsher({
    upstreams: { app: { servers: [a.url] } },
    routes: [{ upstream: 'app' }],
    proxy: { trusted_proxies: ['127.0.0.0/8'] },
  });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  const r = await request(`${u.url}/x`, {
    headers: { host: 'site.test', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', forwarded: 'for=203.0.113.9', 'x-request-id': 'edge-123' },
  });
  const h = a.requests[0]!.headers;
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-real-ip'], '203.0.113.9');
  assert.equal(h.forwarded, 'for=203.0.113.9, for=127.0.0.1;host="site.test";proto=http');
  assert.equal(h['x-request-id'], 'edge-123');
  assert.equal(r.headers['x-request-id'], 'edge-123');
});

test('hop-by-hop headers are removed both ways; Connection cannot strip what usher adds', async (t) => {
  const a = await startUpstream('a', (req, res) => {
    req.resume();
    res.writeHead(200, {
      connection: 'keep-alive, x-upstream-private',
      'x-upstream-private': 'secret',
      'keep-alive': 'timeout=30',
      server: 'Apache/2.4.1 (Unix)',
      'x-powered-by': 'PHP/5.1',
      'x-kept': 'yes',
    });
    res.end('ok');
  });
  const u = await startUsher({ upstreams: { app: { servers: [a.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  const r = await request(`${u.url}/`, {
    headers: {
      connection: 'keep-alive, x-forwarded-for, x-request-id, x-client-private, via',
      'x-client-private': 'p',
      'keep-alive': 'timeout=1',
      te: 'trailers',
      'proxy-connection': 'keep-alive',
      upgrade: 'h2c',
      x_underscored: 'dropped',
      'x-normal': 'kept',
    },
  });
  assert.equal(r.status, 200);
  const h = a.requests[0]!.headers;
  for (const name of ['x-client-private', 'keep-alive', 'te', 'proxy-connection', 'upgrade', 'x_underscored']) {
    assert.equal(h[name], undefined, `${name} must not reach the upstream`);
  }
  assert.equal(h['x-normal'], 'kept');
  assert.equal(h['x-forwarded-for'], '127.0.0.1', 'usher-added fields survive a hostile Connection header');
  assert.ok(h['x-request-id']);
  assert.equal(h.via, '1.1 usher');
  for (const name of ['x-upstream-private', 'server', 'x-powered-by']) {
    assert.equal(r.headers[name], undefined, `${name} must not reach the client`);
  }
  // The upstream's Keep-Alive is hop-by-hop, and usher sends none of its own (RFC 9112 Appendix C.2.2).
  assert.equal(r.headers['keep-alive'], undefined);
  assert.equal(r.headers['x-kept'], 'yes');
  assert.equal(r.headers.via, '1.1 usher');
});

test('host_header: upstream sends the server\'s own authority', async (t) => {
  const a = await startUpstream('a');
  const u = await startUsher({ upstreams: { app: { servers: [a.url], host_header: 'upstream' } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  await request(`${u.url}/`, { headers: { host: 'public.test' } });
  assert.equal(a.requests[0]!.headers.host, `127.0.0.1:${a.port}`);
  assert.equal(a.requests[0]!.headers['x-forwarded-host'], 'public.test');
});

test('keep-alive downstream and pooled keep-alive upstream', async (t) => {
  const upstreamSockets = new Set<unknown>();
  const a = await startUpstream('a', (req, res) => {
    upstreamSockets.add(req.socket);
    req.resume();
    res.end('x');
  });
  const u = await startUsher({ upstreams: { app: { servers: [a.url] } }, routes: [{ upstream: 'app' }] });
  // Count the downstream connections the client had to open: 1 if usher kept the connection alive.
  let downstreamConnections = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => unknown;
  (agent as unknown as { createConnection: (...args: unknown[]) => unknown }).createConnection = (...args: unknown[]) => {
    downstreamConnections++;
    return create(...args);
  };
  t.after(async () => {
    agent.destroy();
    await u.close();
    await a.close();
  });
  for (let i = 0; i < 10; i++) assert.equal((await request(`${u.url}/${i}`, { agent })).status, 200);
  assert.equal(downstreamConnections, 1, 'ten sequential requests reuse one downstream connection');
  assert.equal(upstreamSockets.size, 1, 'ten sequential requests reuse one upstream connection');
});

test('absolute-form targets route by their authority; OPTIONS * is accepted', async (t) => {
  const a = await startUpstream('a');
  const u = await startUsher({
    upstreams: { app: { servers: [a.url] } },
    routes: [{ match: { host: 'abs.test' }, upstream: 'app' }, { respond: { status: 200, body: 'default' } }],
  });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  const reply = await rawRequest(u.port, 'GET http://abs.test/p?q=1 HTTP/1.1\r\nHost: ignored.test\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(reply), 200);
  assert.equal(a.requests[0]!.url, '/p?q=1');
  assert.equal(a.requests[0]!.headers.host, 'abs.test');
  const star = await rawRequest(u.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(star), 200);
});

test('a Host with quotes cannot forge a Forwarded element (it is not a host: 400 before routing)', async (t) => {
  const { up: a, u } = await proxyTo(t, 'a');
  const reply = await rawRequest(u.port, 'GET / HTTP/1.1\r\nHost: a", for=6.6.6.6;x="\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(reply), 400, reply);
  assert.match(reply, /reason: bad_request/);
  assert.equal(a.requests.length, 0);
});
