import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

test('normalisation attacks cannot slip past a /admin deny rule; unsafe targets get 400 unsafe_path', async (t) => {
  const app = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [app.url] } },
    routes: [
      { match: { path: '/admin' }, respond: { status: 403, body: 'denied\n' } },
      { match: { host: ['internal.test', '[::1]', '10.0.0.5', 'ported.test:8080'] }, respond: { status: 403, body: 'internal\n' } },
      { upstream: 'app' },
    ],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });

  for (const target of ['/admin', '/%61dmin', '/%61%64%6D%69%6E/x', '//admin', '///admin/', '/x/../admin', '/./admin', '/x/%2e%2e/admin', '/x/%2E%2E/admin/panel', '/../admin', '/admin;jsessionid=1', '/admin;/panel', '/;x/admin', '/%61dmin;x/y']) {
    const reply = await rawRequest(u.port, `GET ${target} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 403, `${target} must hit the deny rule:\n${reply}`);
  }
  for (const target of ['/admin%2fpanel', '/x%2F..%2Fadmin', '/admin%5c', '/x\\..\\admin', '/admin%00', '/ad%zzmin', '/admin#x', '/admin#/../x', '/x/..;/admin', '/x/.;/admin', '/x/%2e%2e;/admin', '/%2561dmin', '/x/%252e%252e/admin', '/x/%25%32%65%25%32%65/admin', '/%C0%AEadmin', '/x/%C0%AE%C0%AE/admin', '/x%C0%AFadmin', '/x/%E0%80%AE%E0%80%AE/admin', '/x/%F0%80%80%AF/admin', '/%FFadmin']) {
    const reply = await rawRequest(u.port, `GET ${target} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 400, `${target}:\n${reply}`);
    assert.match(reply, /reason: unsafe_path/);
  }
  for (const host of ['internal.test', 'INTERNAL.Test', 'internal.test.', 'internal.test:80', 'internal.test.:8080', 'ported.test:8080', 'ported.test:08080', 'internal.test:', '[::1]', '[0:0::1]', '[0:0:0:0:0:0:0:1]:80', '[::0001]', '10.0.0.5', '10.5', '0xa.0.0.5:80', '012.0.0.5', '167772165']) {
    const reply = await rawRequest(u.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 403, `Host ${host} must hit the host rule:\n${reply}`);
  }
  // Spellings an upstream could read as internal.test (userinfo, a path, a second port, an
  // escape) while usher would send them to the catch-all: refused before routing.
  for (const host of ['x@internal.test', 'internal.test/x', 'internal.test\\', 'internal.test:80:80', 'internal.test:abc', 'internal.test..', '.internal.test', 'internal..test', 'internal.test%2e', '[::1', '[::1]x', '[zz::1]']) {
    const reply = await rawRequest(u.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 400, `Host ${host}:\n${reply}`);
    assert.match(reply, /reason: bad_request/);
  }
  const absolute = await rawRequest(u.port, 'GET http://Internal.Test./x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(absolute), 403, 'the absolute-form authority is the host');
  for (const target of ['http://h.test/admin#', 'http://x@internal.test/x', 'http://internal.test:80:80/x', 'http://[0::1]x/']) {
    const reply = await rawRequest(u.port, `GET ${target} HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 400, `${target}:\n${reply}`);
  }
  const v6 = await rawRequest(u.port, 'GET http://[0::1]:8080/x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(v6), 403, 'an IPv6 authority in another spelling is the same host');
  assert.equal(app.requests.length, 0, 'nothing reached the upstream');

  // What is not /admin goes upstream, with the normalised path and the query as sent.
  const ok = await request(`${u.url}/x/./y//z/%7Euser?q=%2F..`);
  assert.equal(ok.status, 200);
  assert.equal(app.requests[0]!.url, '/x/y/z/~user?q=%2F..');
  const near = await request(`${u.url}/administrator`);
  assert.equal(near.status, 200, '/administrator is not under /admin');
  // ";params" are ignored for matching only: the upstream gets them as sent.
  assert.equal((await request(`${u.url}/x;v=1/admin;y`)).status, 200);
  assert.equal(app.requests[2]!.url, '/x;v=1/admin;y');
});

test('routing.encoded_slashes: keep treats %2F and %5C as ordinary characters of a segment', async (t) => {
  const app = await startUpstream('app');
  const u = await startUsher({
    routing: { encoded_slashes: 'keep' },
    upstreams: { app: { servers: [app.url] } },
    routes: [{ match: { path: '/admin' }, respond: { status: 403 } }, { upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });
  assert.equal((await request(`${u.url}/files/a%2fb%5Cc/../d`)).status, 200);
  assert.equal(app.requests[0]!.url, '/files/d', 'the encoded segment is a segment: .. removes it');
  assert.equal((await request(`${u.url}/files/a%2fb`)).status, 200);
  assert.equal(app.requests[1]!.url, '/files/a%2Fb');
  assert.equal((await request(`${u.url}/%61dmin%2Fx`)).status, 200, '"admin%2Fx" is one segment, not under /admin');
  assert.equal((await request(`${u.url}/%61dmin/x`)).status, 403);
  const nul = await rawRequest(u.port, 'GET /a%00 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(nul), 400, 'NUL stays unsafe');
});
