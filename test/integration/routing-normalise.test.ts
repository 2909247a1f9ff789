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
      { match: { host: 'internal.test' }, respond: { status: 403, body: 'internal\n' } },
      { upstream: 'app' },
    ],
  });
  t.after(async () => {
    await u.close();
    await app.close();
  });

  for (const target of ['/admin', '/%61dmin', '/%61%64%6D%69%6E/x', '//admin', '///admin/', '/x/../admin', '/./admin', '/x/%2e%2e/admin', '/x/%2E%2E/admin/panel', '/../admin']) {
    const reply = await rawRequest(u.port, `GET ${target} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 403, `${target} must hit the deny rule:\n${reply}`);
  }
  for (const target of ['/admin%2fpanel', '/x%2F..%2Fadmin', '/admin%5c', '/x\\..\\admin', '/admin%00', '/ad%zzmin']) {
    const reply = await rawRequest(u.port, `GET ${target} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 400, `${target}:\n${reply}`);
    assert.match(reply, /reason: unsafe_path/);
  }
  for (const host of ['internal.test', 'INTERNAL.Test', 'internal.test.', 'internal.test:80', 'internal.test.:8080']) {
    const reply = await rawRequest(u.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(reply), 403, `Host ${host} must hit the host rule:\n${reply}`);
  }
  const absolute = await rawRequest(u.port, 'GET http://Internal.Test./x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
  assert.equal(rawStatus(absolute), 403, 'the absolute-form authority is the host');
  assert.equal(app.requests.length, 0, 'nothing reached the upstream');

  // What is not /admin goes upstream, with the normalised path and the query as sent.
  const ok = await request(`${u.url}/x/./y//z/%7Euser?q=%2F..`);
  assert.equal(ok.status, 200);
  assert.equal(app.requests[0]!.url, '/x/y/z/~user?q=%2F..');
  const near = await request(`${u.url}/administrator`);
  assert.equal(near.status, 200, '/administrator is not under /admin');
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
