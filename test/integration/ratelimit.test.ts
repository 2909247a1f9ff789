// Rate limits with the local store, over real sockets: each limit holds within its tolerance over
// a few thousand requests, with the RateLimit / RateLimit-Policy / Retry-After fields checked;
// several policies on one route; dry_run; the concurrency limit; the connection limit per client
// address; global policies (before routing); a reload keeps an unchanged policy's buckets.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from '../helpers/client.js';
import { fire } from '../helpers/load.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor } from '../helpers/usher.js';
import type { Usher } from '../../src/server/usher.js';

const HOUR = '1h';

function limiter(u: Usher, name: string) {
  const l = u.runtime.rateLimits.get(name);
  assert.ok(l, `policy ${name}`);
  return l;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, rateLimits: Record<string, unknown>, route: Record<string, unknown> = {}, handler?: (req: IncomingMessage, res: ServerResponse) => void) {
  const up = await startUpstream('app', handler);
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, rate_limits: rateLimits, routes: [{ upstream: 'app', ...route }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

test('a burst per key is exact over 2000 requests, with RateLimit, RateLimit-Policy and Retry-After', async (t) => {
  // 1 per hour: nothing refills during the test, so each user gets exactly its burst.
  const { u, up } = await setup(t, { policies: { per_user: { rate: 1, per: HOUR, burst: 200, key: [{ header: 'x-user' }] } } }, { rate_limits: ['per_user'] });
  const users = ['a', 'b', 'c', 'd'];
  const replies = await fire(u.url, 2000, 32, (i) => ({ 'x-user': users[i % 4]! }));
  for (const user of users) {
    const mine = replies.filter((_, i) => users[i % 4] === user);
    const ok = mine.filter((r) => r.status === 200);
    const limited = mine.filter((r) => r.status === 429);
    assert.equal(ok.length, 200, `user ${user}`);
    assert.equal(limited.length, 300);
    // Every allowed response says how many remain: 199 down to 0, each once.
    const remaining = ok.map((r) => Number(/;r=(\d+);/.exec(String(r.headers.ratelimit))![1])).sort((x, y) => y - x);
    assert.deepEqual(remaining, Array.from({ length: 200 }, (_, i) => 199 - i));
    for (const r of ok) {
      assert.match(String(r.headers.ratelimit), /^"per_user";r=\d+;t=\d+$/);
      assert.equal(r.headers['ratelimit-policy'], '"per_user";q=1;w=3600;usher-burst=200');
    }
    for (const r of limited) {
      const retry = Number(r.headers['retry-after']);
      assert.ok(retry >= 3500 && retry <= 3600, `Retry-After ${retry}`);
      assert.equal(r.headers.ratelimit, `"per_user";r=0;t=${retry}`, 't is the same point in time as Retry-After');
      assert.equal(r.headers['ratelimit-policy'], '"per_user";q=1;w=3600;usher-burst=200');
      assert.match(r.body, /^rate limited/);
      assert.ok(r.headers['x-request-id']);
    }
  }
  assert.equal(up.requests.length, 800, 'refused requests never reach the upstream');
  await waitFor(() => u.access.length >= 2000);
  assert.equal(u.access.filter((l) => l.reason === 'rate_limited' && l.status === 429).length, 1200);
  assert.deepEqual(limiter(u.usher, 'per_user').stats.limited, 1200);
});

test('a rate refills as it should over 3000 requests: within burst + rate × elapsed', async (t) => {
  const { u } = await setup(t, { policies: { steady: { rate: 200, per: '1s', burst: 20 } } }, { rate_limits: ['steady'] });
  const start = performance.now();
  const replies = await fire(u.url, 3000, 16);
  const elapsed = (performance.now() - start) / 1000;
  const ok = replies.filter((r) => r.status === 200).length;
  assert.equal(ok + replies.filter((r) => r.status === 429).length, 3000);
  // Stated tolerance: never above the burst plus what the elapsed time refilled (plus one for
  // rounding); at least the burst plus half of that (requests arrive far faster than 200/s, so
  // the bucket refills the whole time; the clock also counts the connection setup).
  const most = 20 + 200 * elapsed + 1;
  const least = 20 + 200 * elapsed * 0.5;
  assert.ok(ok <= most && ok >= least, `${ok} allowed in ${elapsed.toFixed(2)} s: expected ${least.toFixed(0)}..${most.toFixed(0)}`);
});

test('several policies on one route all apply; RateLimit lists each', async (t) => {
  const { u } = await setup(
    t,
    {
      policies: {
        per_ip: { rate: 1, per: HOUR, burst: 30 },
        per_user: { rate: 1, per: HOUR, burst: 10, key: [{ header: 'x-user' }, 'route'] },
      },
    },
    { name: 'api', rate_limits: ['per_ip', 'per_user'] },
  );
  const statuses: Record<string, number[]> = {};
  for (const user of ['u1', 'u2', 'u3', 'u4']) {
    const replies = await fire(u.url, 15, 3, () => ({ 'x-user': user }));
    statuses[user] = replies.map((r) => r.status).filter((s) => s === 200);
    if (user === 'u1') {
      const first = replies.find((r) => r.status === 200)!;
      assert.match(String(first.headers.ratelimit), /^"per_ip";r=\d+;t=\d+, "per_user";r=\d+;t=\d+$/);
      assert.equal(first.headers['ratelimit-policy'], '"per_ip";q=1;w=3600;usher-burst=30, "per_user";q=1;w=3600;usher-burst=10');
    }
  }
  assert.deepEqual(Object.values(statuses).map((s) => s.length), [10, 10, 10, 0], 'each user its 10; the address its 30');
});

test('dry_run only counts and logs: every request passes', async (t) => {
  const { u, up } = await setup(t, { policies: { trial: { rate: 1, per: HOUR, burst: 5, dry_run: true } } }, { rate_limits: ['trial'] });
  const replies = await fire(u.url, 500, 8);
  assert.ok(replies.every((r) => r.status === 200));
  assert.equal(up.requests.length, 500);
  const l = limiter(u.usher, 'trial');
  assert.equal(l.stats.dryRunLimited, 495);
  assert.equal(l.stats.allowed, 5);
  await waitFor(() => u.logs.some((x) => x.msg === 'rate limit dry run: this request would be refused'));
  const line = u.logs.find((x) => x.msg === 'rate limit dry run: this request would be refused')!;
  assert.equal(line.policy, 'trial');
  assert.ok(u.logs.filter((x) => x.msg === line.msg).length < 10, 'logged at most once a second');
});

test('a concurrency limit per key holds over 2000 requests, and slots come back when responses end', async (t) => {
  const inflight = new Map<string, number>();
  const most = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const user = String(req.headers['x-user']);
    const n = (inflight.get(user) ?? 0) + 1;
    inflight.set(user, n);
    most.set(user, Math.max(most.get(user) ?? 0, n));
    // Answer a little later, so that requests overlap.
    setTimeout(() => {
      inflight.set(user, inflight.get(user)! - 1);
      res.end('ok');
    }, 2);
  };
  const { u } = await setup(t, { policies: { slots: { concurrency: 3, key: [{ header: 'x-user' }] } } }, { rate_limits: ['slots'] }, handler);
  const replies = await fire(u.url, 2000, 24, (i) => ({ 'x-user': i % 2 === 0 ? 'a' : 'b' }));
  const ok = replies.filter((r) => r.status === 200).length;
  const refused = replies.filter((r) => r.status === 429);
  assert.equal(ok + refused.length, 2000);
  assert.ok(ok > 0 && refused.length > 0, `${ok} passed, ${refused.length} refused`);
  assert.ok(most.get('a')! <= 3 && most.get('b')! <= 3, `most in flight: ${[...most]}`);
  for (const r of refused) {
    assert.equal(r.headers['retry-after'], '1');
    assert.match(String(r.headers.ratelimit), /^"slots";r=0$/);
    assert.equal(r.headers['ratelimit-policy'], '"slots";q=3;qu="concurrent-requests"');
  }
  await waitFor(() => u.access.length >= 2000);
  assert.equal(u.access.filter((l) => l.reason === 'concurrency_limited').length, refused.length);
  assert.equal(limiter(u.usher, 'slots').inflight.size, 0, 'every slot released');
  // Afterwards each key has its three slots again.
  const again = await fire(u.url, 3, 3, () => ({ 'x-user': 'a' }));
  assert.deepEqual(again.map((r) => r.status), [200, 200, 200]);
});

function open(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve({ socket, closed }));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

test('a connection limit per client address closes the connections over it at once', async (t) => {
  const { u } = await setup(t, { connections_per_client: 5 });
  const conns = await Promise.all(Array.from({ length: 8 }, () => open(u.port)));
  // Three of the eight are closed by usher without a byte; the other five serve requests.
  const closedOnes: number[] = [];
  conns.forEach((c, i) => void c.closed.then(() => closedOnes.push(i)));
  await waitFor(() => u.usher.connectionCounts.refused === 3 && closedOnes.length === 3);
  const alive = conns.filter((_, i) => !closedOnes.includes(i));
  assert.equal(alive.length, 5);
  const answer = (s: Socket) =>
    new Promise<string>((resolve) => {
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\r\n\r\n')) resolve(buf);
      });
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
  for (const c of alive) assert.match(await answer(c.socket), /^HTTP\/1.1 200/);
  assert.equal(u.usher.connectionCounts.count('127.0.0.1'), 5);
  // Closing two makes room for two.
  for (const c of alive.slice(0, 2)) c.socket.destroy();
  await waitFor(() => u.usher.connectionCounts.count('127.0.0.1') === 3);
  const more = await Promise.all([open(u.port), open(u.port)]);
  assert.match(await answer(more[0]!.socket), /^HTTP\/1.1 200/);
  assert.equal(u.usher.connectionCounts.refused, 3);
  for (const c of [...alive, ...more]) c.socket.destroy();
});

test('global policies apply before routing: to requests of any route, or of none', async (t) => {
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] } },
    rate_limits: { policies: { edge: { rate: 1, per: HOUR, burst: 20 } }, global: ['edge'] },
    routes: [{ match: { path: { prefix: '/app' } }, upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const a = await fire(`${u.url}/nowhere`, 15, 4);
  assert.ok(a.every((r) => r.status === 404 && /^"edge";r=\d+;t=\d+$/.test(String(r.headers.ratelimit))));
  const b = await fire(`${u.url}/app`, 15, 4);
  assert.equal(b.filter((r) => r.status === 200).length, 5);
  assert.equal(b.filter((r) => r.status === 429).length, 10);
});

test('global policies added by a reload apply to the next request, and stop applying when a reload removes them', async (t) => {
  const up = await startUpstream('app');
  const settings = (global: string[]) => ({
    upstreams: { app: { servers: [up.url] } },
    rate_limits: { policies: { edge: { rate: 1, per: HOUR, burst: 3 } }, global },
    routes: [{ upstream: 'app' }],
  });
  const u = await startUsher(settings([]));
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const none = await fire(u.url, 6, 2);
  assert.ok(none.every((r) => r.status === 200 && r.headers.ratelimit === undefined), 'no global policy: nothing limited, no fields');
  await u.usher.reload(config({ log: { level: 'warn', access_log: true }, ...settings(['edge']) }));
  const on = await fire(u.url, 6, 2);
  assert.equal(on.filter((r) => r.status === 200).length, 3);
  assert.equal(on.filter((r) => r.status === 429).length, 3);
  await u.usher.reload(config({ log: { level: 'warn', access_log: true }, ...settings([]) }));
  const off = await fire(u.url, 6, 2);
  assert.ok(off.every((r) => r.status === 200 && r.headers.ratelimit === undefined), 'removed again');
});

test('a reload keeps the buckets of an unchanged policy and starts a changed one afresh', async (t) => {
  const up = await startUpstream('app');
  const settings = (burst: number, other = 'x') => ({
    upstreams: { app: { servers: [up.url] } },
    rate_limits: { policies: { p: { rate: 1, per: HOUR, burst } } },
    routes: [{ upstream: 'app', rate_limits: ['p'], name: other }],
  });
  const u = await startUsher(settings(10));
  t.after(async () => {
    await u.close();
    await up.close();
  });
  assert.equal((await fire(u.url, 12, 2)).filter((r) => r.status === 200).length, 10);
  await u.usher.reload(config({ log: { level: 'warn', access_log: true }, ...settings(10, 'renamed') }));
  assert.equal((await request(u.url)).status, 429, 'same policy: still empty');
  await u.usher.reload(config({ log: { level: 'warn', access_log: true }, ...settings(11, 'renamed') }));
  assert.equal((await fire(u.url, 12, 2)).filter((r) => r.status === 200).length, 11, 'changed policy: a new bucket');
});
