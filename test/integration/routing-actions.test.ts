import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

test('redirect: a template with placeholders, the https upgrade (port, query kept), each status', async (t) => {
  const u = await startUsher({
    routes: [
      { match: { path: '/old' }, redirect: { to: 'https://new.example.test/new{path}?from={query.ref}&id={request_id}', status: 308 } },
      { match: { host: 'plain.test' }, redirect: { https: true } },
      { match: { host: 'alt.test' }, redirect: { https: true, https_port: 8443, status: 302 } },
      { match: { path: '/see' }, redirect: { to: '/other/{cookie.user}', status: 303 } },
    ],
  });
  t.after(() => u.close());

  const a = await request(`${u.url}/old/page?ref=mail`);
  assert.equal(a.status, 308);
  const id = a.headers['x-request-id'];
  assert.equal(a.headers.location, `https://new.example.test/new/old/page?from=mail&id=${String(id)}`);
  assert.equal(a.body, '');

  const b = await request(`${u.url}/a//b/../c?x=1&y=2`, { headers: { host: 'PLAIN.test:8080' } });
  assert.equal(b.status, 301);
  assert.equal(b.headers.location, 'https://plain.test/a/c?x=1&y=2', 'same host (port dropped), normalised path, query kept');

  const c = await request(`${u.url}/z`, { headers: { host: 'alt.test' } });
  assert.equal(c.status, 302);
  assert.equal(c.headers.location, 'https://alt.test:8443/z');

  const d = await request(`${u.url}/see`, { method: 'POST', headers: { cookie: 'user=ann; theme=dark' }, body: 'x' });
  assert.equal(d.status, 303);
  assert.equal(d.headers.location, '/other/ann');
});

test('rewrite: strip and add a prefix, regex replace with captures, host; the query is kept', async (t) => {
  const app = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [app.url] } },
    routes: [
      { match: { path: '/api' }, upstream: 'app', rewrite: { strip_prefix: '/api', add_prefix: '/v2' } },
      { match: { path: '/strip' }, upstream: 'app', rewrite: { strip_prefix: '/strip' } },
      { match: { path: { regex: '^/users/[0-9]+' } }, upstream: 'app', rewrite: { regex: { pattern: '^/users/([0-9]+)(/.*)?$', replace: '/accounts/$1/profile$2' } } },
      { match: { path: '/h' }, upstream: 'app', rewrite: { host: 'internal.svc' } },
    ],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });

  const cases: [string, string][] = [
    ['/api/items?page=2', '/v2/items?page=2'],
    ['/api', '/v2/'],
    ['/strip', '/'],
    ['/strip/a/b', '/a/b'],
    ['/strip;v=1/a;b', '/a;b'],
    ['/strip;v=1', '/'],
    ['/api;jsessionid=1/items', '/v2/items'],
    ['/users/42', '/accounts/42/profile'],
    ['/users/42/photos?s=1', '/accounts/42/profile/photos?s=1'],
  ];
  for (const [sent, got] of cases) {
    const r = await request(`${u.url}${sent}`, { headers: { host: 'client.test' } });
    assert.equal(r.status, 200, sent);
    assert.equal(app.requests.at(-1)!.url, got, sent);
    assert.equal(app.requests.at(-1)!.headers.host, 'client.test');
  }
  await request(`${u.url}/h/x`, { headers: { host: 'client.test' } });
  const last = app.requests.at(-1)!;
  assert.equal(last.url, '/h/x');
  assert.equal(last.headers.host, 'internal.svc');
  assert.equal(last.headers['x-forwarded-host'], 'client.test', 'the original host stays in X-Forwarded-Host');
});

test('request and response header rules: remove, set, add with placeholders', async (t) => {
  const app = await startUpstream('app', (req, res) => {
    req.resume();
    res.writeHead(200, [['x-internal', 'secret'], ['cache-control', 'no-store'], ['x-keep', '1']].flat());
    res.end('ok');
  });
  const u = await startUsher({
    upstreams: { app: { servers: [app.url] } },
    routes: [
      {
        upstream: 'app',
        request_headers: {
          remove: ['x-debug', 'Cookie'],
          set: { 'x-user': '{cookie.user}', 'x-client': '{client_ip}', 'x-route-info': '{host}{path} {query.v} {header.x-trace} {request_id}' },
          add: { 'x-tag': 'usher' },
        },
        response_headers: { remove: ['x-internal'], set: { 'cache-control': 'public, max-age=60' }, add: { 'x-served-for': '{header.x-trace}' } },
      },
    ],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });

  const r = await request(`${u.url}/p/q?v=7`, {
    headers: { host: 'h.test', 'x-debug': '1', cookie: 'user=bob', 'x-user': 'forged', 'x-trace': 'tr-1', 'x-tag': 'client' },
  });
  assert.equal(r.status, 200);
  const up = app.requests[0]!;
  assert.equal(up.headers['x-debug'], undefined);
  assert.equal(up.headers.cookie, undefined);
  assert.equal(up.headers['x-user'], 'bob', 'set replaces what the client sent');
  assert.equal(up.headers['x-client'], '127.0.0.1');
  assert.equal(up.headers['x-route-info'], `h.test/p/q 7 tr-1 ${String(r.headers['x-request-id'])}`);
  assert.equal(up.headers['x-tag'], 'client, usher', 'add keeps the client\'s field');
  assert.equal(up.headers.host, 'h.test');
  assert.equal(r.headers['x-internal'], undefined);
  assert.equal(r.headers['cache-control'], 'public, max-age=60');
  assert.equal(r.headers['x-keep'], '1');
  assert.equal(r.headers['x-served-for'], 'tr-1');
  assert.equal(r.body, 'ok');
});

test('header rules keep the Host of an upstream with host_header: upstream in place', async (t) => {
  const app = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [app.url], host_header: 'upstream' } },
    routes: [{ upstream: 'app', request_headers: { remove: ['x-a', 'x-b'] } }],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });
  await request(`${u.url}/`, { headers: { 'x-a': '1', 'x-b': '2', 'x-c': '3' } });
  const up = app.requests[0]!;
  assert.equal(up.headers.host, `127.0.0.1:${app.port}`);
  assert.equal(up.headers['x-a'], undefined);
  assert.equal(up.headers['x-c'], '3');
  assert.equal(up.headers['x-forwarded-for'], '127.0.0.1');
});
