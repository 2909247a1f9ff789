import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startFlaky } from '../helpers/flaky.js';
import { closedPort } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

// The defaults under faults (issue #11). Before: a dead server stayed in rotation forever (every
// request to it paid a failed try and a retry) and a 503 server kept getting its share; with
// outlier detection configured, a server that recovered waited out its whole ejection.

const unhealthy = (u: TestUsher) => u.logs.filter((l) => l.msg === 'upstream server unhealthy');

test('with the defaults, a dead server is ejected at its first refused connection and then gets no traffic', async (t) => {
  const port = await closedPort();
  const a = await startFlaky('a');
  const b = await startFlaky('b');
  const u = await startUsher({
    upstreams: { app: { servers: [`http://127.0.0.1:${port}`, a.url, b.url] } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });
  for (let i = 0; i < 12; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  await waitFor(() => u.access.length >= 12);
  // One request found it dead (and was retried at once on another server); none after that.
  assert.deepEqual(
    u.access.map((l) => l.attempts),
    [2, ...Array<number>(11).fill(1)],
  );
  assert.equal(unhealthy(u).length, 1);
  assert.match(String(unhealthy(u)[0]!.reason), /1 consecutive connect failures/);
  assert.equal(a.served + b.served, 12);
});

test('with the defaults, a server answering 503 is ejected after 3 in a row and gets nothing more', async (t) => {
  const sick = await startFlaky('sick');
  const a = await startFlaky('a');
  sick.status = 503;
  const u = await startUsher({
    upstreams: { app: { servers: [sick.url, a.url] } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await sick.close();
    await a.close();
  });
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push((await request(`${u.url}/`)).status);
  assert.deepEqual([...new Set(statuses)], [200], 'every 503 was retried on the healthy server');
  assert.equal(sick.served, 3);
  assert.equal(unhealthy(u).length, 1);
});

test('a passing active check readmits an ejected server before its ejection time is over', async (t) => {
  // Its application fails (503) while its health page passes: HAProxy's readmission on a passing
  // check, rather than the hour of ejection configured here.
  const s = await startFlaky('s');
  const a = await startFlaky('a');
  s.status = 503;
  const u = await startUsher({
    upstreams: {
      app: {
        servers: [s.url, a.url],
        outlier_detection: { base_ejection_time: '1h' },
        health_check: { path: '/healthz', interval: '40ms', timeout: '200ms', rise: 1, fall: 1 },
      },
    },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await s.close();
    await a.close();
  });
  // Requests until it is ejected: between them a passing check may readmit it already.
  while (unhealthy(u).length === 0) await request(`${u.url}/`);
  assert.match(String(unhealthy(u)[0]!.reason), /3 consecutive failures \(last: status 503\)/);
  s.status = 200;
  await waitFor(() => u.logs.some((l) => l.msg === 'upstream server healthy'), 5000, 'the readmission');
  assert.equal(u.logs.find((l) => l.msg === 'upstream server healthy')?.reason, 'active check passed');
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push((await request(`${u.url}/`)).body);
  assert.deepEqual(seen.sort(), ['a', 'a', 's', 's'], 'it takes its turns again');
});

test('readmit_on_check: false keeps the ejection to its end, as before', async (t) => {
  const s = await startFlaky('s');
  const a = await startFlaky('a');
  s.status = 503;
  const u = await startUsher({
    upstreams: {
      app: {
        servers: [s.url, a.url],
        outlier_detection: { base_ejection_time: '1h', readmit_on_check: false },
        health_check: { path: '/healthz', interval: '40ms', timeout: '200ms', rise: 1, fall: 1 },
      },
    },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await s.close();
    await a.close();
  });
  for (let i = 0; i < 6; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  await waitFor(() => unhealthy(u).length === 1, 5000, 'the ejection');
  s.status = 200;
  const served = s.served;
  // Wait for passing checks after the ejection (not a sleep: the checks themselves are counted).
  const checked = u.usher.runtime.clusters.get('app')!.endpoints[0]!.health;
  const since = Date.now();
  await waitFor(() => (checked.lastCheck?.at ?? 0) > since && checked.lastCheck?.ok === true, 5000, 'a passing check');
  for (let i = 0; i < 4; i++) assert.equal((await request(`${u.url}/`)).body, 'a');
  assert.equal(s.served, served);
});
