// CORS and security headers (issue #13 part 4) over real sockets, a real upstream behind usher:
// preflights answered (allowed) or refused without the allow fields, never proxied; actual
// responses with the right Access-Control-* fields, local replies (a 502 from a dead upstream,
// an access denial) included; Vary: Origin; security headers set vs kept, route vs listener.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, type Reply } from '../helpers/client.js';
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const APP = 'https://app.example.com';

/** The upstream answers with fields of its own that CORS and security_headers must deal with. */
async function setup(t: { after(fn: () => Promise<void>): void }, settings: Record<string, unknown>): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    req.on('end', () => {
      const h: Record<string, string> = { 'content-type': 'text/plain', vary: 'Accept-Encoding', 'access-control-allow-origin': '*', 'x-app': 'yes' };
      if (req.url!.startsWith('/framed')) Object.assign(h, { 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'" });
      res.writeHead(200, h);
      res.end(`${req.method} ${req.url}`);
    });
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] }, dead: { servers: [`http://127.0.0.1:${await closedPort()}`] } }, ...settings });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

const preflight = (u: TestUsher, path: string, origin: string, method: string, headers?: string): Promise<Reply> =>
  request(`${u.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, ...(headers === undefined ? {} : { 'access-control-request-headers': headers }) },
  });

const CORS_ROUTES = [
  {
    name: 'api',
    match: { path: '/api' },
    upstream: 'app',
    cors: { origins: [APP, 'https://*.example.net', 'http://localhost:3000'], methods: ['GET', 'PUT', 'DELETE'], headers: ['Content-Type', 'X-Token'], expose_headers: ['X-App'], credentials: true, max_age: '10m' },
  },
  { name: 'public', match: { path: '/public' }, upstream: 'app', cors: { origins: '*' } },
  { name: 'dead', match: { path: '/dead' }, upstream: 'dead', cors: { origins: [APP], credentials: true } },
  { name: 'guarded', match: { path: '/guarded' }, upstream: 'app', access: { deny: '127.0.0.1' }, cors: { origins: [APP] } },
  { name: 'reflect', match: { path: '/reflect' }, upstream: 'app', cors: { origins: [APP], methods: ['*'], headers: ['*'], credentials: true } },
];

test('cors preflight: an allowed origin gets 204 with the allow fields, answered by usher and logged as cors_preflight', async (t) => {
  const { up, u } = await setup(t, { routes: CORS_ROUTES });
  const r = await preflight(u, '/api/items', APP, 'PUT', 'content-type, x-token');
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], APP, 'the origin reflected, never "*" with credentials');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-allow-methods'], 'GET, PUT, DELETE');
  assert.equal(r.headers['access-control-allow-headers'], 'content-type, x-token');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.equal(r.headers.vary, 'Origin');
  assert.ok(r.headers['x-request-id']);
  // A subdomain pattern, and a safelisted method that needs no listing.
  const sub = await preflight(u, '/api', 'https://a.b.example.net', 'POST');
  assert.equal(sub.status, 204);
  assert.equal(sub.headers['access-control-allow-origin'], 'https://a.b.example.net');
  assert.equal((await preflight(u, '/api', 'http://localhost:3000', 'GET')).status, 204);
  // "*" for methods and headers reflects what the preflight asks for (works with credentials).
  const reflect = await preflight(u, '/reflect', APP, 'PATCH', 'X-Custom, X-Other');
  assert.equal(reflect.status, 204);
  assert.equal(reflect.headers['access-control-allow-methods'], 'PATCH');
  assert.equal(reflect.headers['access-control-allow-headers'], 'x-custom, x-other');
  assert.match(String(reflect.headers.vary), /Access-Control-Request-Headers/);
  // Without credentials and for any origin: "*".
  const pub = await preflight(u, '/public', 'https://anyone.test', 'POST');
  assert.equal(pub.status, 204);
  assert.equal(pub.headers['access-control-allow-origin'], '*');
  assert.equal(pub.headers['access-control-allow-credentials'], undefined);

  assert.equal(up.requests.length, 0, 'no preflight reached the upstream');
  await waitFor(() => u.access.length >= 5, 5000, 'the access-log lines');
  for (const l of u.access) assert.equal(l.reason, 'cors_preflight');
});

test('cors preflight refused: unknown origin, method or header gets 403 cors_preflight_refused without allow fields, not proxied', async (t) => {
  const { up, u } = await setup(t, { routes: CORS_ROUTES });
  const cases: [string, string, string | undefined][] = [
    ['https://evil.test', 'PUT', undefined],
    ['https://example.net', 'GET', undefined], // the pattern is for subdomains only
    ['https://app.example.com.evil.test', 'GET', undefined],
    ['http://app.example.com', 'GET', undefined], // another scheme is another origin
    [APP, 'PATCH', undefined],
    [APP, 'PUT', 'x-token, x-secret'],
  ];
  for (const [origin, method, headers] of cases) {
    const r = await preflight(u, '/api', origin, method, headers);
    assert.equal(r.status, 403, `${origin} ${method} ${headers ?? ''}`);
    assert.match(r.body, /reason: cors_preflight_refused/);
    for (const name of Object.keys(r.headers)) assert.ok(!name.startsWith('access-control-'), `${name} on a refused preflight`);
    assert.equal(r.headers.vary, 'Origin');
  }
  assert.equal(up.requests.length, 0);
  await waitFor(() => u.access.length >= cases.length, 5000, 'the access-log lines');
  for (const l of u.access) assert.equal(l.reason, 'cors_preflight_refused');
  // An OPTIONS that is not a preflight (no Access-Control-Request-Method) is an ordinary request.
  const plain = await request(`${u.url}/api`, { method: 'OPTIONS', headers: { origin: APP } });
  assert.equal(plain.status, 200);
  assert.equal(plain.body, 'OPTIONS /api');
  assert.equal(plain.headers['access-control-allow-origin'], APP);
});

test('cors actual responses: the origin reflected with credentials and exposed headers, Vary merged, the upstream\'s fields replaced', async (t) => {
  const { u } = await setup(t, { routes: CORS_ROUTES });
  const ok = await request(`${u.url}/api/x`, { headers: { origin: APP } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], APP, 'the upstream\'s "*" is replaced');
  assert.equal(ok.headers['access-control-allow-credentials'], 'true');
  assert.equal(ok.headers['access-control-expose-headers'], 'X-App');
  assert.equal(ok.headers.vary, 'Accept-Encoding, Origin');
  assert.equal(ok.rawHeaders.filter((h) => h.toLowerCase() === 'access-control-allow-origin').length, 1);

  const other = await request(`${u.url}/api/x`, { headers: { origin: 'https://evil.test' } });
  assert.equal(other.status, 200, 'the request is served; the browser withholds it from the page');
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  assert.equal(other.headers['access-control-allow-credentials'], undefined);
  assert.equal(other.headers.vary, 'Accept-Encoding, Origin');

  const none = await request(`${u.url}/api/x`);
  assert.equal(none.headers['access-control-allow-origin'], undefined);
  assert.equal(none.headers.vary, 'Accept-Encoding, Origin', 'the answer depends on Origin even without one');

  const pub = await request(`${u.url}/public`);
  assert.equal(pub.headers['access-control-allow-origin'], '*', 'with "*" the field is on every response');
  assert.equal(pub.headers.vary, 'Accept-Encoding', 'and nothing depends on the origin');
});

test('cors on local replies: a 502 from a dead upstream and a 403 access denial carry the fields', async (t) => {
  const { u } = await setup(t, { routes: CORS_ROUTES });
  const dead = await request(`${u.url}/dead`, { headers: { origin: APP } });
  assert.equal(dead.status, 502);
  assert.match(dead.body, /reason: upstream_connect_refused/);
  assert.equal(dead.headers['access-control-allow-origin'], APP);
  assert.equal(dead.headers['access-control-allow-credentials'], 'true');
  assert.equal(dead.headers.vary, 'Origin');
  const denied = await request(`${u.url}/guarded`, { headers: { origin: APP } });
  assert.equal(denied.status, 403);
  assert.match(denied.body, /reason: access_denied/);
  assert.equal(denied.headers['access-control-allow-origin'], APP);
  // A preflight to the guarded route: the access list decides first.
  assert.equal((await preflight(u, '/guarded', APP, 'GET')).status, 403);
  await waitFor(() => u.access.length >= 3, 5000, 'the access-log lines');
  assert.deepEqual(u.access.map((l) => l.reason), ['upstream_connect_refused', 'access_denied', 'access_denied']);
});

test('security headers: defaults set, replace vs keep the upstream\'s, listener-wide (also on local replies), a route\'s replaces its listener\'s', async (t) => {
  const { u } = await setup(t, {
    listeners: [{ address: '127.0.0.1:0', security_headers: { frame_options: 'DENY', content_security_policy: "default-src 'self'" } }],
    routes: [
      { name: 'defaults', match: { path: '/framed/defaults' }, upstream: 'app', security_headers: {} },
      {
        name: 'keep',
        match: { path: '/framed/keep' },
        upstream: 'app',
        security_headers: { upstream: 'keep', content_security_policy: "default-src 'self'", permissions_policy: 'geolocation=()', referrer_policy: 'no-referrer' },
      },
      { name: 'replace', match: { path: '/framed/replace' }, upstream: 'app', security_headers: { content_security_policy: "default-src 'self'", content_type_options: null } },
      { name: 'plain', match: { path: '/plain' }, upstream: 'app' },
      { name: 'dead', match: { path: '/dead' }, upstream: 'dead', security_headers: { frame_options: 'SAMEORIGIN' } },
    ],
  });
  const defaults = await request(`${u.url}/framed/defaults`);
  assert.equal(defaults.headers['x-content-type-options'], 'nosniff');
  assert.equal(defaults.headers['x-frame-options'], 'SAMEORIGIN', 'replaced: the upstream sent DENY');
  assert.equal(defaults.headers['referrer-policy'], 'strict-origin-when-cross-origin');
  assert.equal(defaults.headers['content-security-policy'], "default-src 'none'", 'not part of the defaults: the upstream\'s stays');
  assert.equal(defaults.headers['permissions-policy'], undefined);

  const keep = await request(`${u.url}/framed/keep`);
  assert.equal(keep.headers['x-frame-options'], 'DENY', 'kept from the upstream');
  assert.equal(keep.headers['content-security-policy'], "default-src 'none'", 'kept from the upstream');
  assert.equal(keep.headers['permissions-policy'], 'geolocation=()', 'filled in');
  assert.equal(keep.headers['referrer-policy'], 'no-referrer');
  assert.equal(keep.headers['x-content-type-options'], 'nosniff');

  const replace = await request(`${u.url}/framed/replace`);
  assert.equal(replace.headers['content-security-policy'], "default-src 'self'");
  assert.equal(replace.rawHeaders.filter((h) => h.toLowerCase() === 'content-security-policy').length, 1);
  assert.equal(replace.headers['x-content-type-options'], undefined, 'null: not set');

  // The listener's section on a route without its own, and on usher's own replies.
  const plain = await request(`${u.url}/plain`);
  assert.equal(plain.headers['x-frame-options'], 'DENY');
  assert.equal(plain.headers['content-security-policy'], "default-src 'self'");
  const noRoute = await request(`${u.url}/nowhere`);
  assert.equal(noRoute.status, 404);
  assert.equal(noRoute.headers['x-frame-options'], 'DENY');
  assert.equal(noRoute.headers['x-content-type-options'], 'nosniff');
  // A route's own section replaces the listener's, on a 502 too.
  const dead = await request(`${u.url}/dead`);
  assert.equal(dead.status, 502);
  assert.equal(dead.headers['x-frame-options'], 'SAMEORIGIN');
  assert.equal(dead.headers['content-security-policy'], undefined);
});
