// One client address everywhere: routing's client_ip, `{client_ip}` and `hash: client_ip` see the
// client after proxy.trusted_proxies, as the access lists and rate limits do — the peer, or what
// a trusted peer forwarded in X-Forwarded-For. A forged X-Forwarded-For from a peer that is not
// trusted changes nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

const LIMIT = { timeout: 120_000 };

async function setup(t: { after(fn: () => Promise<void> | void): void }, trusted: string[]) {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    res.end(String(req.headers['x-client']));
  });
  t.after(() => up.close());
  const u = await startUsher({
    proxy: { trusted_proxies: trusted },
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'inside', match: { path: '/', client_ip: ['10.0.0.0/8'] }, upstream: 'app', request_headers: { set: { 'x-client': 'inside {client_ip}' } } },
      { name: 'outside', upstream: 'app', request_headers: { set: { 'x-client': 'outside {client_ip}' } } },
    ],
  });
  t.after(() => u.close());
  return u;
}

test('from a trusted proxy: the forwarded client is matched by client_ip and rendered by {client_ip}', LIMIT, async (t) => {
  const u = await setup(t, ['127.0.0.1']);
  const inside = await request(`${u.url}/x`, { headers: { 'x-forwarded-for': '10.1.2.3' } });
  assert.equal(inside.body, 'inside 10.1.2.3');
  const outside = await request(`${u.url}/x`, { headers: { 'x-forwarded-for': '192.0.2.7' } });
  assert.equal(outside.body, 'outside 192.0.2.7');
  const direct = await request(`${u.url}/x`);
  assert.equal(direct.body, 'outside 127.0.0.1');
  assert.deepEqual(u.access.filter((l) => l.route !== undefined).map((l) => [l.route, l.client_address]), [
    ['inside', '10.1.2.3'],
    ['outside', '192.0.2.7'],
    ['outside', '127.0.0.1'],
  ]);
});

test('from a peer that is not trusted: X-Forwarded-For is not believed', LIMIT, async (t) => {
  const u = await setup(t, ['192.0.2.1']);
  const forged = await request(`${u.url}/x`, { headers: { 'x-forwarded-for': '10.1.2.3' } });
  assert.equal(forged.body, 'outside 127.0.0.1');
});
