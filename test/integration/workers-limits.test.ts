// Workers (issue #16 pt 3): local rate and concurrency limits hold per usher instance.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, status, until, yaml } from '../helpers/workers.js';

test('a local rate limit holds per usher instance: the workers share one bucket through the primary', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    few: { rate: 1, per: 1h, burst: 6 }\nroutes: [{ upstream: app, rate_limits: [few] }]\n'));
  const statuses: number[] = [];
  // New connections: the requests alternate between the two workers.
  for (let i = 0; i < 12; i++) statuses.push((await request(`${s.url}/x`)).status);
  assert.deepEqual(statuses, [...Array(6).fill(200), ...Array(6).fill(429)]);
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.requests ?? 0) > 0), 'both workers answered');
});

test('a concurrency limit holds per usher instance: the primary counts the slots of both workers', LIMIT, async (t) => {
  const held: (() => void)[] = [];
  const up = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push(() => res.end('done'));
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    two: { concurrency: 2 }\nroutes: [{ upstream: app, rate_limits: [two] }]\n'));
  // Four at once on new connections (two per worker): a count per worker would let all four through.
  const replies = Array.from({ length: 4 }, () => request(`${s.url}/x`));
  const refused = await Promise.race([Promise.all(replies), until('two refusals and two held upstream', async () => (held.length === 2 ? true : undefined))]);
  assert.equal(refused, true);
  const settled = Promise.all(replies);
  while (held.length > 0) held.shift()!();
  const statuses = (await settled).map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 429, 429]);
  assert.equal(up.requests.length, 2);
  // The slots came back: both workers take requests again.
  const again = Array.from({ length: 2 }, () => request(`${s.url}/y`));
  await until('two more upstream', async () => (held.length === 2 ? true : undefined));
  while (held.length > 0) held.shift()!();
  assert.deepEqual((await Promise.all(again)).map((r) => r.status), [200, 200]);
});
