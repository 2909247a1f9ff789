// The dashboard with `--workers 2` (issue #15): the primary's event stream merges every worker's
// live window, so each request appears once in the ticks whichever worker served it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { openSse } from '../helpers/sse.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, status, until } from '../helpers/workers.js';

test('with two workers, the dashboard\'s ticks count every request once, over both workers', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, `listeners: [{ address: 127.0.0.1:0 }]\nadmin: { address: 127.0.0.1:0 }\nupstreams:\n  app:\n    servers: [${JSON.stringify(up.url)}]\nroutes:\n  - { name: api, match: { path: /api }, upstream: app }\n  - { name: web, upstream: app }\n`);
  const stream = await openSse(`${s.admin}/events`);
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  // The first tick: both workers' collectors run from here on.
  await until('a first tick', async () => (stream.of('tick').length > 0 ? true : undefined));
  const before = await status(s.admin);
  // A new connection per request: round-robin hands them to both workers.
  for (let i = 0; i < 20; i++) assert.equal((await request(`${s.url}/api/${i}`)).status, 200);
  for (let i = 0; i < 10; i++) assert.equal((await request(`${s.url}/page/${i}`)).status, 200);
  const after = await status(s.admin);
  for (const w of after.workers) {
    const was = before.workers.find((x) => x.id === w.id)!;
    assert.ok((w.requests ?? 0) > (was.requests ?? 0), `worker ${w.id} served none of them: ${JSON.stringify(after.workers)}`);
  }
  const sum = (route: string) => stream.of('tick').reduce((n: number, tick: { routes: [string, number][] }) => n + (tick.routes.find((r) => r[0] === route)?.[1] ?? 0), 0);
  await until('the 30 requests in the ticks', async () => (sum('api') >= 20 && sum('web') >= 10 ? true : undefined));
  assert.equal(sum('api'), 20);
  assert.equal(sum('web'), 10);
  const totals = stream.of('tick').reduce((n: number, tick: { total: [number] }) => n + tick.total[0], 0);
  assert.equal(totals, 30);
  // status: the workers, as GET /status shows them.
  await until('a status event', async () => (stream.of('status').length > 0 ? true : undefined));
  assert.equal(stream.of('status').at(-1).workers.length, 2);
});
