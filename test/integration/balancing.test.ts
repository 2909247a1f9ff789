import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, type TestUsher } from '../helpers/usher.js';

async function three(t: { after: (fn: () => Promise<void>) => void }, upstream: Record<string, unknown>, weights = [1, 1, 1]) {
  const ups: TestUpstream[] = [];
  for (const name of ['a', 'b', 'c']) ups.push(await startUpstream(name));
  const u = await startUsher({
    upstreams: { app: { ...upstream, servers: ups.map((up, i) => ({ url: up.url, weight: weights[i] })) } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    for (const up of ups) await up.close();
  });
  return { ups, u };
}

async function tally(u: TestUsher, n: number, headers: (i: number) => Record<string, string> = () => ({}), path = (_i: number) => '/'): Promise<Map<string, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const counts = new Map<string, number>();
  try {
    for (let i = 0; i < n; i += 4) {
      const batch = await Promise.all([0, 1, 2, 3].map((k) => request(`${u.url}${path(i + k)}`, { agent, headers: headers(i + k) })));
      for (const r of batch) {
        assert.equal(r.status, 200);
        counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
      }
    }
  } finally {
    agent.destroy();
  }
  return counts;
}

for (const balance of ['round_robin', 'least_request', 'least_conn', 'random']) {
  test(`balance: ${balance} spreads real requests by weight (4:2:1)`, async (t) => {
    const { u } = await three(t, { balance }, [4, 2, 1]);
    const n = 280;
    const counts = await tally(u, n);
    const share = (name: string) => (counts.get(name) ?? 0) / n;
    // Generous bounds: random draws and in-flight counts vary, but the order and rough shares hold.
    assert.ok(share('a') > 0.4 && share('a') < 0.75, `a: ${share('a')}`);
    assert.ok(share('b') > 0.15 && share('b') < 0.45, `b: ${share('b')}`);
    assert.ok(share('c') > 0.03 && share('c') < 0.3, `c: ${share('c')}`);
    assert.ok(share('a') > share('c'));
  });
}

test('balance: hash on a header: one key, one server; keys spread over all servers', async (t) => {
  const { u } = await three(t, { balance: 'hash', hash: { key: 'header:x-user' } });
  const first = await request(`${u.url}/`, { headers: { 'x-user': 'alice' } });
  for (let i = 0; i < 10; i++) assert.equal((await request(`${u.url}/x${i}`, { headers: { 'x-user': 'alice' } })).body, first.body);
  const counts = await tally(u, 120, (i) => ({ 'x-user': `user-${i}` }));
  assert.equal(counts.size, 3, JSON.stringify([...counts]));
});

test('balance: hash on a query parameter and on the path', async (t) => {
  const { u } = await three(t, { balance: 'hash', hash: { key: 'query:id' } });
  const a = await request(`${u.url}/one?id=42`);
  const b = await request(`${u.url}/two?x=1&id=42`);
  assert.equal(a.body, b.body);
  const byPath = await three(t, { balance: 'hash', hash: { key: 'path' } });
  const p = await request(`${byPath.u.url}/img/cat.png?v=1`);
  for (let i = 0; i < 5; i++) assert.equal((await request(`${byPath.u.url}/img/cat.png?v=${i}`)).body, p.body);
});

test('balance: sticky sets a signed cookie and keeps the client on its server while it is up', async (t) => {
  const { ups, u } = await three(t, { balance: 'sticky', sticky: { cookie: 'srv', secret: 'a-secret-of-16-chars', max_age: '1h' } });
  const first = await request(`${u.url}/`);
  const setCookie = first.headers['set-cookie']?.[0] ?? '';
  const m = /^srv=([A-Za-z0-9_-]{22}); Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/.exec(setCookie);
  assert.ok(m, setCookie);
  assert.ok(!setCookie.includes('127.0.0.1'), 'the cookie names no address');
  const cookie = `srv=${m[1]}`;
  for (let i = 0; i < 8; i++) {
    const r = await request(`${u.url}/`, { headers: { cookie: `other=1; ${cookie}` } });
    assert.equal(r.body, first.body);
    assert.equal(r.headers['set-cookie'], undefined, 'a valid cookie is not set again');
  }
  // A forged or foreign token is rebalanced and replaced.
  const forged = await request(`${u.url}/`, { headers: { cookie: 'srv=AAAAAAAAAAAAAAAAAAAAAA' } });
  assert.match(forged.headers['set-cookie']?.[0] ?? '', /^srv=/);
  // The pinned server goes away: the client moves, and gets a new cookie.
  await ups[['a', 'b', 'c'].indexOf(first.body)]!.close();
  const moved = await request(`${u.url}/`, { headers: { cookie } });
  assert.equal(moved.status, 200);
  assert.notEqual(moved.body, first.body);
  assert.match(moved.headers['set-cookie']?.[0] ?? '', /^srv=/);
});

for (const balance of ['least_request', 'least_conn']) {
  test(`balance: ${balance} sends less to a slow server than round robin would`, async (t) => {
    const fast1 = await startUpstream('fast1');
    const fast2 = await startUpstream('fast2');
    const slow = await startUpstream('slow', (req, res) => {
      req.resume();
      // Answers only after the next fast answers went out: it holds requests longer.
      setTimeout(() => res.end('slow'), 40);
    });
    const u = await startUsher({ upstreams: { app: { balance, servers: [fast1.url, fast2.url, slow.url] } }, routes: [{ upstream: 'app' }] });
    t.after(async () => {
      await u.close();
      for (const up of [fast1, fast2, slow]) await up.close();
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 6 });
    t.after(() => agent.destroy());
    let n = 0;
    const worker = async () => {
      while (n < 240) {
        n++;
        assert.equal((await request(`${u.url}/`, { agent })).status, 200);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    const share = slow.requests.length / 240;
    t.diagnostic(`${balance}: the slow server got ${slow.requests.length} of 240 requests`);
    // Round robin would give it a third; busy-aware balancers much less.
    assert.ok(share < 0.25, `slow server share ${share}`);
  });
}
