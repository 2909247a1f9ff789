// Workers and long-lived connections (issue #16 point 3): a reload sends the new config to the
// same worker processes (Primary.apply → each worker's Usher.reload), so a WebSocket held by a
// worker stays open through reloads that leave its route alone, and ends by the route's drain
// policy when a reload changes it — in every worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeFile } from '../helpers/cli.js';
import { echo, open, startLiveUpstream } from '../helpers/long-lived.js';
import { LIMIT, start, status, until, yaml } from '../helpers/workers.js';

test('--workers 2: WebSockets in both workers survive 20 reloads in the same processes; a change of their route ends them all with 1001', LIMIT, async (t) => {
  const up = await startLiveUpstream('app');
  t.after(() => up.close());
  const routes = (n: number, live = '') => `routes:\n  - { name: other, match: { path: /other }, respond: { body: "v${n}" } }\n  - { name: live, upstream: app, drain: { grace: 0 }${live} }\n`;
  const s = await start(t, yaml(JSON.stringify(up.url), routes(0)));
  const adminPort = Number(new URL(s.admin).port);
  const before = await status(s.admin);
  // node:cluster hands connections round robin: of 4, each worker gets some.
  const clients = [];
  for (let i = 0; i < 4; i++) clients.push(await open(`ws://127.0.0.1:${s.port}/ws${i}`));
  for (const c of clients) await echo(c, 'before');
  const spread = await status(s.admin);
  assert.ok(spread.workers.every((w) => (w.connections ?? 0) > 0), `both workers hold connections: ${JSON.stringify(spread.workers)}`);
  let hash = spread.config.hash;
  const reload = async (text: string, what: string) => {
    writeFile(s.file, text);
    s.cli.signal('SIGHUP');
    hash = await until(what, async () => {
      const st = await status(s.admin);
      const seen = new Set(st.workers.map((w) => w.config_hash));
      return st.config.hash !== hash && seen.size === 1 && seen.has(st.config.hash) ? st.config.hash : undefined;
    });
  };
  for (let n = 1; n <= 20; n++) {
    await reload(yaml(JSON.stringify(up.url), routes(n), adminPort), `reload ${n} in both workers`);
    for (const [i, c] of clients.entries()) await echo(c, `client ${i} after reload ${n}`);
  }
  const after = await status(s.admin);
  assert.deepEqual(after.workers.map((w) => w.pid), before.workers.map((w) => w.pid), 'the same worker processes');
  assert.deepEqual(after.workers.map((w) => w.restarts), [0, 0]);
  assert.equal(up.closes.length, 0);
  for (const c of clients) assert.deepEqual(c.errors, []);

  await reload(yaml(JSON.stringify(up.url), routes(21, ', priority: 1'), adminPort), 'the reload that changes route live');
  const closed = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closed.map((c) => c.code), Array(4).fill(1001));
  await until('the upstream saw four closes', async () => (up.closes.length === 4 ? true : undefined));
  assert.deepEqual(up.closes.map((c) => c.code), Array(4).fill(1001));
});
