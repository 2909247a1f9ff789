// Forward auth (issue #13 pt 3) over real sockets: a real auth service and a real upstream, both
// HTTP servers started by the test. Allowing (headers copied on, client copies removed), denying
// (status, headers and body relayed), timing out (504), unreachable (503), through a `url` and
// through a named upstream, the decision cache; every refusal logged with its reason code.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { h2request, h2session } from '../helpers/h2.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

interface AuthService {
  url: string;
  seen: { method: string; url: string; headers: IncomingMessage['headers']; bodyBytes: number }[];
}

/** The auth service: "Bearer good" is alice, "Bearer redirect" goes to a login page, /slow never answers, anything else is refused with a body. */
async function startAuthService(t: { after(fn: () => Promise<void>): void }): Promise<AuthService> {
  const seen: AuthService['seen'] = [];
  const held: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    let text = '';
    req.on('data', (c: Buffer) => {
      bodyBytes += c.length;
      text += c.toString('utf8');
    });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodyBytes });
      if (req.url!.startsWith('/slow')) return void held.push(res);
      if (req.url!.startsWith('/body')) {
        // Judges the body: it must say "allow".
        const ok = text.includes('allow') || (bodyBytes === 0 && req.headers.authorization === 'Bearer good');
        res.writeHead(ok ? 204 : 403, { 'content-type': 'text/plain', 'x-auth-user': 'body-judge' });
        return res.end(ok ? undefined : `refused: ${text}`);
      }
      const auth = req.headers.authorization;
      if (auth === 'Bearer good') {
        res.writeHead(200, { 'x-auth-user': 'alice', 'x-auth-groups': 'admin,ops', 'x-not-copied': 'no', 'content-type': 'text/plain' });
        return res.end('ok, and this body is not relayed');
      }
      if (auth === 'Bearer redirect') {
        res.writeHead(302, { location: 'https://login.test/?rd=' + encodeURIComponent(String(req.headers['x-forwarded-uri'])) });
        return res.end();
      }
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="svc"', 'content-type': 'application/json', 'x-auth-reason': 'bad token' });
      res.end(JSON.stringify({ error: 'not allowed', got: auth ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const res of held) res.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const svc = await startAuthService(t);
  const up = await startUpstream('app');
  const dead = await closedPort();
  const headers = ['x-auth-user', 'X-Auth-Groups'];
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] }, authsvc: { servers: [svc.url] } },
    routes: [
      { name: 'url', match: { path: '/url' }, upstream: 'app', auth: { forward: { url: `${svc.url}/verify?from=usher`, response_headers: headers } } },
      { name: 'up', match: { path: '/up' }, upstream: 'app', auth: { forward: { upstream: 'authsvc', path: '/check', request_headers: ['authorization'], response_headers: headers } } },
      { name: 'slow', match: { path: '/slow' }, upstream: 'app', auth: { forward: { url: `${svc.url}/slow`, timeout: '300ms' } } },
      { name: 'dead', match: { path: '/dead' }, upstream: 'app', auth: { forward: { url: `http://127.0.0.1:${dead}/verify` } } },
      { name: 'body', match: { path: '/body' }, upstream: 'app', auth: { forward: { url: `${svc.url}/body`, body: '1kb', response_headers: headers } } },
      { name: 'cached', match: { path: '/cached' }, upstream: 'app', auth: { forward: { url: `${svc.url}/cached`, response_headers: headers, cache: { key: ['authorization'], ttl: '1h' } } } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { svc, up, u };
}

test('forward auth: a 2xx lets the request go on with the chosen headers; the service sees the method, URI and forwarding headers', async (t) => {
  const { svc, up, u } = await setup(t);
  const r = await request(`${u.url}/url/items?q=1`, { method: 'POST', headers: { authorization: 'Bearer good', 'x-auth-user': 'mallory', cookie: 'a=1', 'content-type': 'text/plain' }, body: 'the body stays with the request' });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'app');
  const asked = svc.seen[0]!;
  assert.equal(asked.method, 'GET');
  assert.equal(asked.url, '/verify?from=usher');
  assert.equal(asked.bodyBytes, 0, 'the client body is not sent to the auth service');
  assert.equal(asked.headers['x-forwarded-method'], 'POST');
  assert.equal(asked.headers['x-forwarded-uri'], '/url/items?q=1');
  assert.equal(asked.headers['x-forwarded-proto'], 'http');
  assert.equal(asked.headers['x-forwarded-host'], `127.0.0.1:${u.port}`);
  assert.equal(asked.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(asked.headers.authorization, 'Bearer good');
  assert.equal(asked.headers.cookie, 'a=1', 'all client headers by default');
  assert.ok(asked.headers['x-request-id']);
  const got = up.requests[0]!;
  assert.equal(got.method, 'POST');
  assert.equal(got.headers['x-auth-user'], 'alice', 'from the auth service, not the client');
  assert.equal(got.rawHeaders.filter((h) => h.toLowerCase() === 'x-auth-user').length, 1);
  assert.equal(got.headers['x-auth-groups'], 'admin,ops');
  assert.equal(got.headers['x-not-copied'], undefined);
  assert.equal(got.headers.authorization, 'Bearer good', 'the client\'s Authorization still goes upstream');

  // Through a named upstream: its path, and only the configured request headers.
  const r2 = await request(`${u.url}/up/x`, { headers: { authorization: 'Bearer good', cookie: 'a=1' } });
  assert.equal(r2.status, 200);
  assert.equal(svc.seen[1]!.url, '/check');
  assert.equal(svc.seen[1]!.headers.cookie, undefined, 'request_headers: only authorization');
  assert.equal(up.requests[1]!.headers['x-auth-user'], 'alice');
});

test('forward auth: a denial is relayed as the service sent it; a timeout is 504, an unreachable service 503; each logged with its reason', async (t) => {
  const { svc, up, u } = await setup(t);
  const denied = await request(`${u.url}/url`, { headers: { authorization: 'Bearer bad' } });
  assert.equal(denied.status, 401);
  assert.deepEqual(JSON.parse(denied.body), { error: 'not allowed', got: 'Bearer bad' }, 'the body relayed');
  assert.equal(denied.headers['www-authenticate'], 'Bearer realm="svc"');
  assert.equal(denied.headers['content-type'], 'application/json');
  assert.equal(denied.headers['x-auth-reason'], 'bad token');
  assert.ok(denied.headers['x-request-id']);
  const noAuth = await request(`${u.url}/up`);
  assert.equal(noAuth.status, 401);
  assert.equal(JSON.parse(noAuth.body).got, null);
  const redirect = await request(`${u.url}/url/private?x=1`, { headers: { authorization: 'Bearer redirect' } });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.location, 'https://login.test/?rd=%2Furl%2Fprivate%3Fx%3D1');

  const slow = await request(`${u.url}/slow`, { headers: { authorization: 'Bearer good' } });
  assert.equal(slow.status, 504);
  assert.match(slow.body, /reason: auth_timeout/);
  const dead = await request(`${u.url}/dead`, { headers: { authorization: 'Bearer good' } });
  assert.equal(dead.status, 503);
  assert.match(dead.body, /reason: auth_unavailable/);
  assert.equal(up.requests.length, 0, 'nothing refused reached the upstream');
  assert.ok(svc.seen.some((s) => s.url === '/slow'), 'the slow service was asked');

  await waitFor(() => u.access.length >= 5, 5000, 'the access-log lines');
  assert.deepEqual(
    u.access.map((l) => [l.route, l.status, l.reason]),
    [
      ['url', 401, 'auth_denied'],
      ['up', 401, 'auth_denied'],
      ['url', 302, 'auth_denied'],
      ['slow', 504, 'auth_timeout'],
      ['dead', 503, 'auth_unavailable'],
    ],
  );
});

test('forward auth: allowing answers are reused per key for the ttl, denials never', async (t) => {
  const { svc, up, u } = await setup(t);
  const asked = () => svc.seen.filter((s) => s.url === '/cached').length;
  for (let i = 0; i < 3; i++) assert.equal((await request(`${u.url}/cached`, { headers: { authorization: 'Bearer good' } })).status, 200);
  assert.equal(asked(), 1, 'one subrequest for three requests with the same Authorization');
  for (const req of up.requests) assert.equal(req.headers['x-auth-user'], 'alice', 'the reused answer\'s headers too');
  for (let i = 0; i < 2; i++) assert.equal((await request(`${u.url}/cached`, { headers: { authorization: 'Bearer bad' } })).status, 401);
  assert.equal(asked(), 3, 'each denial asked again');
  assert.equal((await request(`${u.url}/cached`, { headers: { authorization: 'Bearer good', 'x-auth-user': 'mallory' } })).status, 200);
  assert.equal(up.requests.at(-1)!.headers['x-auth-user'], 'alice');
  assert.equal(asked(), 3);
});

test('forward auth with `body`: the service judges the body (POST); a request without one is asked with GET; a body over the bound is 413', async (t) => {
  const { svc, up, u } = await setup(t);
  const asked = () => svc.seen.filter((s) => s.url === '/body');
  const ok = await request(`${u.url}/body`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'please allow this' });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(asked()[0]!.method, 'POST');
  assert.equal(asked()[0]!.bodyBytes, 17);
  assert.equal(asked()[0]!.headers['x-forwarded-method'], 'PUT');
  assert.equal(asked()[0]!.headers['content-type'], 'text/plain');
  assert.equal(up.requests[0]!.method, 'PUT');
  assert.equal(up.requests[0]!.headers['x-auth-user'], 'body-judge');
  assert.equal(up.requests[0]!.headers['content-length'], '17', 'the body still goes upstream');

  const denied = await request(`${u.url}/body`, { method: 'POST', body: 'no way' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'refused: no way');
  const chunked = await request(`${u.url}/body`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'allow, chunked' });
  assert.equal(chunked.status, 200);
  assert.equal(asked()[2]!.bodyBytes, 14);

  const get = await request(`${u.url}/body`, { headers: { authorization: 'Bearer good' } });
  assert.equal(get.status, 200);
  assert.equal(asked()[3]!.method, 'GET', 'no body: asked in the request phase, with GET');
  assert.equal(asked()[3]!.bodyBytes, 0);

  const big = await request(`${u.url}/body`, { method: 'POST', body: 'allow'.repeat(300) });
  assert.equal(big.status, 413);
  assert.match(big.body, /reason: body_too_large/);
  assert.equal(asked().length, 4, 'a body over the bound is not sent to the service');
  assert.equal(up.requests.length, 3);
});

test('forward auth with `body` over HTTP/2: a request without a body (no Content-Length, END_STREAM on HEADERS) is still asked, in upstream_request', async (t) => {
  const svc = await startAuthService(t);
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ name: 'body', upstream: 'app', auth: { forward: { url: `${svc.url}/body`, body: '1kb', response_headers: ['x-auth-user'] } } }],
  });
  const session = await h2session(u.url);
  t.after(async () => {
    session.close();
    await u.close();
    await up.close();
  });
  const refused = await h2request(session, { ':path': '/x', authorization: 'Bearer bad' });
  assert.equal(refused.status, 403, 'asked (and refused) although no body phase ran');
  assert.equal(up.requests.length, 0);
  const ok = await h2request(session, { ':path': '/x', authorization: 'Bearer good', 'x-auth-user': 'mallory' });
  assert.equal(ok.status, 200);
  assert.equal(up.requests[0]!.headers['x-auth-user'], 'body-judge');
  const withBody = await h2request(session, { ':path': '/x' }, 'allow me');
  assert.equal(withBody.status, 200);
  assert.deepEqual(svc.seen.map((s) => [s.method, s.bodyBytes]), [['GET', 0], ['GET', 0], ['POST', 8]]);
});
