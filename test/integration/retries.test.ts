import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startFlaky, type FlakyUpstream } from '../helpers/flaky.js';
import { startRawUpstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const FAST = { backoff: { base: '1ms', max: '5ms' } };

async function withUsher(t: { after: (fn: () => Promise<void>) => void }, servers: { url: string }[], upstream: Record<string, unknown> = {}): Promise<TestUsher> {
  const u = await startUsher({ upstreams: { app: { servers: servers.map((s) => s.url), ...upstream } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  return u;
}

async function flaky(t: { after: (fn: () => Promise<void>) => void }, ...names: string[]): Promise<FlakyUpstream[]> {
  const ups: FlakyUpstream[] = [];
  for (const n of names) ups.push(await startFlaky(n));
  t.after(async () => {
    for (const up of ups) await up.close();
  });
  return ups;
}

test('a 503 to a GET is retried on another server (default retry.on)', async (t) => {
  const [a, b] = await flaky(t, 'a', 'b');
  a!.status = 503;
  const u = await withUsher(t, [a!, b!], { retry: FAST });
  const r = await request(`${u.url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'b');
  assert.equal(a!.served, 1);
  await waitFor(() => u.access.length === 1);
  assert.equal(u.access[0]!.attempts, 2);
  assert.equal(u.access[0]!.upstream, b!.url);
});

test('a POST is not retried once sent: the 503 is relayed; a status not in retry.on is relayed too', async (t) => {
  const [a, b] = await flaky(t, 'a', 'b');
  a!.status = 503;
  b!.status = 503;
  const u = await withUsher(t, [a!, b!], { retry: FAST });
  const r = await request(`${u.url}/`, { method: 'POST', body: 'x' });
  assert.equal(r.status, 503);
  assert.equal(a!.served + b!.served, 1);
  a!.status = 500;
  b!.status = 500;
  const g = await request(`${u.url}/`);
  assert.equal(g.status, 500, '500 is not in the default retry.on');
  assert.equal(a!.served + b!.served, 2);
});

test('a PUT body under retry.buffer_body is replayed to the next server after a reset; a larger one is not', async (t) => {
  const seen: string[] = [];
  const resetter = await startRawUpstream((socket) => socket.destroy());
  const good = await startUpstream('good', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push(body);
      res.end(`got ${body.length}`);
    });
  });
  t.after(async () => {
    await resetter.close();
    await good.close();
  });
  const u = await withUsher(t, [resetter, good], { balance: 'round_robin', retry: { ...FAST, buffer_body: '1kb' } });
  // Round robin starts with the resetter.
  const small = await request(`${u.url}/doc`, { method: 'PUT', body: 'hello body' });
  assert.equal(small.status, 200);
  assert.equal(small.body, 'got 10');
  assert.deepEqual(seen, ['hello body']);
  await request(`${u.url}/doc`, { method: 'PUT', body: 'again' }); // goes to good: the rotation is back at the resetter
  const big = await request(`${u.url}/doc`, { method: 'PUT', body: 'x'.repeat(4096), headers: { accept: 'application/json' } });
  assert.equal(big.status, 502);
  assert.equal(JSON.parse(big.body).reason, 'upstream_reset');
});

test('retry.per_try_timeout abandons a hanging try and retries elsewhere', async (t) => {
  const hang = await startUpstream('hang', (req) => req.resume());
  const [b] = await flaky(t, 'b');
  t.after(() => hang.close());
  const u = await withUsher(t, [hang, b!], { retry: { ...FAST, per_try_timeout: '100ms' } });
  const r = await request(`${u.url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'b');
  assert.equal(hang.requests.length, 1);
});

test('never retried once response headers went downstream', async (t) => {
  const dies = await startRawUpstream((socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
    setImmediate(() => socket.destroy());
  });
  const [b] = await flaky(t, 'b');
  t.after(() => dies.close());
  const u = await withUsher(t, [dies, b!], { retry: FAST });
  await assert.rejects(request(`${u.url}/`), /aborted|ECONNRESET|socket hang up/);
  assert.equal(b!.served, 0);
});

test('retry budget: under a full outage retries stay within budget.percent of requests', async (t) => {
  const ups = await flaky(t, 'a', 'b', 'c');
  for (const up of ups) up.status = 503;
  // Without ejection (on by default), so that every request meets the outage and only the budget limits retries.
  const u = await withUsher(t, ups, { retry: { ...FAST, attempts: 2, budget: { percent: 20, min_retries: 2 } }, outlier_detection: { enabled: false } });
  const n = 60;
  for (let i = 0; i < n; i++) assert.equal((await request(`${u.url}/`)).status, 503);
  const hits = ups.reduce((sum, up) => sum + up.served, 0);
  const retries = hits - n;
  // Without a budget every request would be tried 3 times (180 hits).
  assert.ok(retries > 0, 'some retries were made');
  assert.ok(retries <= 0.2 * n + 2, `retries ${retries} over the budget`);
});

async function holding(name: string): Promise<TestUpstream & { release(): void; held: number }> {
  const waiting: (() => void)[] = [];
  const up = await startUpstream(name, (req, res) => {
    req.resume();
    waiting.push(() => res.end(name));
  });
  const held = up as TestUpstream & { release(): void; held: number };
  held.release = () => {
    for (const w of waiting.splice(0)) w();
  };
  Object.defineProperty(held, 'held', { get: () => waiting.length });
  return held;
}

test('circuit breaker: a server at max_requests is skipped; all at their limit → 503 upstream_overloaded at once', async (t) => {
  const a = await holding('a');
  t.after(() => a.close());
  const u = await startUsher({ upstreams: { app: { servers: [{ url: a.url, max_requests: 1 }] } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  const first = request(`${u.url}/`);
  await waitFor(() => a.requests.length === 1);
  const second = await request(`${u.url}/`, { headers: { accept: 'application/json' } });
  assert.equal(second.status, 503);
  assert.equal(JSON.parse(second.body).reason, 'upstream_overloaded');
  assert.equal(a.requests.length, 1, 'the overloaded request never reached the server');
  a.release();
  assert.equal((await first).status, 200);
  const third = request(`${u.url}/`);
  await waitFor(() => a.held === 1);
  a.release();
  assert.equal((await third).status, 200, 'capacity is back once the first finished');
});

test('circuit breaker: upstream-wide max_requests with a bounded queue and a queue timeout', async (t) => {
  const a = await holding('a');
  t.after(() => a.close());
  const u = await startUsher({
    upstreams: { app: { servers: [a.url], circuit_breaker: { max_requests: 2, max_pending: 1, queue_timeout: '150ms' } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(() => u.close());
  const inflight = [request(`${u.url}/1`), request(`${u.url}/2`)];
  await waitFor(() => a.held === 2);
  const queued = request(`${u.url}/3`);
  const admission = u.usher.runtime.clusters.get('app')!.admission!;
  await waitFor(() => admission.pending === 1);
  const rejected = await request(`${u.url}/4`);
  assert.equal(rejected.status, 503, 'the queue is full: rejected at once');
  assert.match(rejected.body, /reason: upstream_overloaded/);
  const timedOut = await queued;
  assert.equal(timedOut.status, 503, 'waited queue_timeout, then gave up');
  assert.equal(a.requests.length, 2);
  // A queued request goes through as soon as a slot frees up.
  const later = request(`${u.url}/5`);
  await waitFor(() => admission.pending === 1);
  a.release();
  await Promise.all(inflight);
  await waitFor(() => a.held === 1);
  a.release();
  assert.equal((await later).status, 200);
});

test('circuit breaker: a client that gives up while queued leaves the queue; its request never reaches the server', async (t) => {
  const a = await holding('a');
  t.after(() => a.close());
  const u = await startUsher({
    upstreams: { app: { servers: [a.url], circuit_breaker: { max_requests: 1, max_pending: 5, queue_timeout: '10s' } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(() => u.close());
  const first = request(`${u.url}/first`);
  await waitFor(() => a.held === 1);
  const admission = u.usher.runtime.clusters.get('app')!.admission!;
  const gone = httpRequest(`${u.url}/gone`);
  gone.on('error', () => {});
  gone.end();
  await waitFor(() => admission.pending === 1, 5000, 'queued');
  gone.destroy();
  await waitFor(() => admission.pending === 0, 5000, 'withdrawn');
  a.release();
  assert.equal((await first).status, 200);
  const after = request(`${u.url}/after`);
  await waitFor(() => a.held === 1, 5000, 'after reached the server');
  a.release();
  const r = await after;
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(
    a.requests.map((r) => r.url),
    ['/first', '/after'],
  );
});
