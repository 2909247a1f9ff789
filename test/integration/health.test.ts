import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startFlaky, type FlakyUpstream } from '../helpers/flaky.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const FAST_CHECK = { path: '/healthz', interval: '40ms', timeout: '200ms', rise: 2, fall: 2 };

async function setup(t: { after: (fn: () => Promise<void>) => void }, names: string[], upstream: Record<string, unknown>, servers?: (ups: FlakyUpstream[]) => unknown[]) {
  const ups: FlakyUpstream[] = [];
  for (const n of names) ups.push(await startFlaky(n));
  const u = await startUsher({
    upstreams: { app: { servers: servers ? servers(ups) : ups.map((up) => up.url), ...upstream } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    for (const up of ups) await up.close();
  });
  return { ups, u };
}

function healthLogs(u: TestUsher, healthy: boolean) {
  return u.logs.filter((l) => l.msg === (healthy ? 'upstream server healthy' : 'upstream server unhealthy'));
}

async function bodies(u: TestUsher, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await request(`${u.url}/`)).body);
  return out;
}

test('active http check: fall marks a server down with the reason, rise brings it back', async (t) => {
  const { ups, u } = await setup(t, ['a', 'b'], { health_check: FAST_CHECK });
  const [a] = ups as [FlakyUpstream, FlakyUpstream];
  a.healthy = false;
  await waitFor(() => healthLogs(u, false).length > 0, 5000, 'a marked unhealthy');
  const down = healthLogs(u, false)[0]!;
  assert.equal(down.server, a.url);
  assert.equal(down.source, 'active');
  assert.equal(down.reason, 'status 503');
  const ep = u.usher.runtime.clusters.get('app')!.endpoints[0]!;
  assert.equal(ep.health.up, false);
  assert.equal(ep.health.reason, 'status 503');
  assert.equal(ep.health.lastCheck?.ok, false);
  assert.deepEqual(new Set(await bodies(u, 6)), new Set(['b']));
  a.healthy = true;
  await waitFor(() => healthLogs(u, true).length > 0, 5000, 'a healthy again');
  assert.equal(ep.health.up, true);
  assert.deepEqual(new Set(await bodies(u, 6)), new Set(['a', 'b']));
});

test('active http check: body pattern and Host header; a hanging check is a timeout', async (t) => {
  let mode: 'ok' | 'wrong-body' | 'hang' = 'ok';
  const hosts: string[] = [];
  const up = await startUpstream('x', (req, res) => {
    req.resume();
    if (req.url !== '/status') return res.end('x');
    hosts.push(req.headers.host ?? '');
    if (mode === 'hang') return; // never answers
    res.end(mode === 'ok' ? '{"status":"ok"}' : '{"status":"degraded"}');
  });
  const u = await startUsher({
    upstreams: {
      app: {
        servers: [up.url],
        panic_threshold: 0,
        health_check: { ...FAST_CHECK, path: '/status', host: 'health.internal', expect_status: ['200-299'], expect_body: '"status":"ok"', fall: 1, rise: 1 },
      },
    },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  await waitFor(() => hosts.length > 0);
  assert.equal(hosts[0], 'health.internal');
  mode = 'wrong-body';
  await waitFor(() => healthLogs(u, false).length === 1, 5000, 'body mismatch');
  assert.equal(healthLogs(u, false)[0]!.reason, 'body mismatch');
  const r = await request(`${u.url}/`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).reason, 'no_upstream_server');
  mode = 'ok';
  await waitFor(() => healthLogs(u, true).length === 1, 5000, 'recovered');
  mode = 'hang';
  await waitFor(() => healthLogs(u, false).length === 2, 5000, 'timeout');
  assert.equal(healthLogs(u, false)[1]!.reason, 'timeout');
});

test('active tcp check: a server that stops listening is "refused"', async (t) => {
  const port = await closedPort();
  const live = await startFlaky('live');
  const u = await startUsher({
    upstreams: { app: { servers: [`http://127.0.0.1:${port}`, live.url], health_check: { type: 'tcp', interval: '40ms', timeout: '200ms', fall: 1 } } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await live.close();
  });
  await waitFor(() => healthLogs(u, false).length > 0, 5000, 'refused');
  assert.equal(healthLogs(u, false)[0]!.reason, 'refused');
  assert.equal(healthLogs(u, false)[0]!.server, `http://127.0.0.1:${port}`);
});

test('outlier detection: consecutive 5xx eject a server (at most max_ejection_percent), which returns on its own', async (t) => {
  const { ups, u } = await setup(t, ['a', 'b', 'c'], {
    outlier_detection: { consecutive_5xx: 3, base_ejection_time: '150ms', max_ejection_percent: 34 },
  });
  const [a, b] = ups as [FlakyUpstream, FlakyUpstream, FlakyUpstream];
  a.status = 500;
  b.status = 500;
  // Round robin: a and b each see 3 failures within the first 9 requests; only one may be ejected (34% of 3).
  for (let i = 0; i < 12; i++) await request(`${u.url}/`);
  const ejected = healthLogs(u, false);
  assert.equal(ejected.length, 1);
  assert.equal(ejected[0]!.source, 'passive');
  assert.match(String(ejected[0]!.reason), /^3 consecutive failures \(last: status 500\)$/);
  const first = ejected[0]!.server as string;
  await waitFor(() => healthLogs(u, true).length > 0, 5000, 'readmitted');
  assert.equal(healthLogs(u, true)[0]!.reason, 'ejection time over');
  assert.equal(healthLogs(u, true)[0]!.server, first);
  a.status = 200;
  b.status = 200;
  const ep = u.usher.runtime.clusters.get('app')!.endpoints.find((e) => e.id === first)!;
  assert.equal(ep.health.ejections, 1);
});

test('outlier detection: consecutive connect failures eject a dead server', async (t) => {
  const port = await closedPort();
  const live = await startFlaky('live');
  const u = await startUsher({
    upstreams: { app: { servers: [`http://127.0.0.1:${port}`, live.url], outlier_detection: { consecutive_connect_failures: 2, base_ejection_time: '10s' } } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await live.close();
  });
  for (let i = 0; i < 6; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  assert.equal(healthLogs(u, false).length, 1);
  assert.match(String(healthLogs(u, false)[0]!.reason), /2 consecutive connect failures \(last: upstream_connect_refused\)/);
  live.served = 0;
  const before = u.access.length;
  for (let i = 0; i < 4; i++) await request(`${u.url}/`);
  await waitFor(() => u.access.length >= before + 4);
  // Once ejected, nothing is tried on it: every request takes one attempt.
  assert.deepEqual(u.access.slice(before).map((l) => l.attempts), [1, 1, 1, 1]);
});

test('failover: priority groups and backups take traffic only while the groups before them are down, and give it back', async (t) => {
  const { ups, u } = await setup(t, ['p0', 'p1', 'backup'], { health_check: { ...FAST_CHECK, rise: 1, fall: 1 } }, (ups) => [
    { url: ups[0]!.url, priority: 0 },
    { url: ups[1]!.url, priority: 1 },
    { url: ups[2]!.url, backup: true },
  ]);
  const [p0, p1] = ups as [FlakyUpstream, FlakyUpstream, FlakyUpstream];
  assert.deepEqual(new Set(await bodies(u, 4)), new Set(['p0']));
  p0.healthy = false;
  await waitFor(() => healthLogs(u, false).length === 1, 5000, 'p0 down');
  assert.deepEqual(new Set(await bodies(u, 4)), new Set(['p1']));
  p1.healthy = false;
  await waitFor(() => healthLogs(u, false).length === 2, 5000, 'p1 down');
  assert.deepEqual(new Set(await bodies(u, 4)), new Set(['backup']));
  p0.healthy = true;
  await waitFor(() => healthLogs(u, true).length === 1, 5000, 'p0 back');
  assert.deepEqual(new Set(await bodies(u, 4)), new Set(['p0']), 'failback to the first group');
});

test('panic threshold: when most servers are marked down, traffic spreads over all of them; 0 disables it', async (t) => {
  for (const panic_threshold of [50, 0]) {
    const { ups, u } = await setup(t, ['a', 'b', 'c'], { panic_threshold, health_check: { ...FAST_CHECK, fall: 1 } });
    // The health page fails but the servers still answer: the checks are wrong, not the servers.
    ups[0]!.healthy = false;
    ups[1]!.healthy = false;
    await waitFor(() => healthLogs(u, false).length === 2, 5000, 'two down');
    const seen = new Set(await bodies(u, 9));
    assert.deepEqual(seen, panic_threshold === 50 ? new Set(['a', 'b', 'c']) : new Set(['c']), `panic_threshold ${panic_threshold}`);
  }
});

test('a reload that keeps an upstream unchanged keeps its health state (an ejected server stays out)', async (t) => {
  const port = await closedPort();
  const live = await startFlaky('live');
  const upstreams = { app: { servers: [`http://127.0.0.1:${port}`, live.url], outlier_detection: { consecutive_connect_failures: 1, base_ejection_time: '1m' } } };
  const u = await startUsher({ upstreams, routes: [{ upstream: 'app' }], log: { level: 'info', access_log: true } });
  t.after(async () => {
    await u.close();
    await live.close();
  });
  for (let i = 0; i < 3; i++) await request(`${u.url}/`);
  const before = u.usher.runtime.clusters.get('app')!;
  assert.equal(before.endpoints[0]!.health.ejected, true);
  await u.usher.reload(config({ upstreams, routes: [{ match: { path: '/new' }, respond: { body: 'new' } }, { upstream: 'app' }], log: { level: 'info', access_log: true } }));
  const after = u.usher.runtime.clusters.get('app')!;
  assert.equal(after, before, 'the cluster was reused');
  assert.equal((await request(`${u.url}/new`)).body, 'new');
  const n = u.access.length;
  for (let i = 0; i < 3; i++) assert.equal((await request(`${u.url}/`)).body, 'live');
  await waitFor(() => u.access.length === n + 3);
  assert.deepEqual(u.access.slice(n).map((l) => l.attempts), [1, 1, 1], 'the ejected server is still skipped');
});
