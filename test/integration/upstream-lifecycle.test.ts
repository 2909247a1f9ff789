// What an upstream keeps across a reload, and what usher.close() leaves behind: real sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { config, startUsher } from '../helpers/usher.js';

test('sticky without a configured secret: a cookie stays valid across a reload that changes the upstream', async (t) => {
  const ups: TestUpstream[] = [];
  for (const name of ['a', 'b', 'c']) ups.push(await startUpstream(name));
  const upstream = (timeout: string) => ({ app: { balance: 'sticky', servers: ups.map((up) => up.url), timeouts: { response_header: timeout } } });
  const u = await startUsher({ upstreams: upstream('30s'), routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    for (const up of ups) await up.close();
  });
  const first = await request(`${u.url}/`);
  const cookie = (first.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  assert.ok(cookie.includes('='), `a sticky cookie was set: ${cookie}`);
  const before = u.usher.runtime.clusters.get('app');
  await u.usher.reload(config({ upstreams: upstream('20s'), routes: [{ upstream: 'app' }] }));
  assert.notEqual(u.usher.runtime.clusters.get('app'), before, 'a changed upstream is a new cluster');
  for (let i = 0; i < 6; i++) {
    const r = await request(`${u.url}/`, { headers: { cookie } });
    assert.equal(r.body, first.body, 'still pinned to its server');
    assert.equal(r.headers['set-cookie'], undefined, 'the cookie is still valid');
  }
});
