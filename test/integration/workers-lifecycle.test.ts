// Workers (issue #16 pt 2): kill -9 of a worker under load, reloads under load, SIGTERM drain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/usher.js';
import { killUnderLoad, LIMIT, load, start, status, until, yaml } from '../helpers/workers.js';
import { writeFile } from '../helpers/cli.js';

test('kill -9 of a worker under load: only its in-flight requests fail, the other serves, and it is replaced', LIMIT, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    setTimeout(() => res.end('app'), 10);
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'routes: [{ upstream: app }]\n'));
  const before = await status(s.admin);
  const victim = before.workers[0]!;
  // Four clients, a new connection per request: a request fails only if it was on the victim.
  const { replaced, failures } = await killUnderLoad(t, `${s.url}/x`, s.admin, victim);
  assert.equal(replaced.restarts, 1);
  assert.ok(failures.length <= 4, `more failures than requests in flight on the killed worker: ${failures.join('; ')}`);
  // The replacement takes connections again.
  for (let i = 0; i < 6; i++) assert.equal((await request(`${s.url}/x`)).status, 200);
  const after = await status(s.admin);
  assert.ok((after.workers.find((w) => w.id === victim.id)!.connections ?? 0) > 0, JSON.stringify(after.workers));
  assert.equal(s.cli.messages(/worker died: replacing it/).length, 1);
});

test('reloads under load across workers: no request fails, every worker serves the new config', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const route = (n: number) => `routes:\n  - { match: { path: /v }, respond: { status: 200, body: "v${n}" } }\n  - { upstream: app }\n`;
  const s = await start(t, yaml(JSON.stringify(up.url), route(0)));
  const v = load(`${s.url}/v`, 2, true);
  const proxied = load(`${s.url}/x`, 2, true);
  t.after(() => Promise.all([v.stop(), proxied.stop()]).then(() => undefined));
  for (let n = 1; n <= 3; n++) {
    writeFile(s.file, yaml(JSON.stringify(up.url), route(n), Number(new URL(s.admin).port)));
    s.cli.signal('SIGHUP');
    await until(`reload ${n} in both workers`, async () => {
      const st = await status(s.admin);
      const seen = new Set(st.workers.map((w) => w.config_hash));
      return seen.size === 1 && seen.has(st.config.hash) && v.bodies.has(`v${n}`) ? true : undefined;
    });
  }
  await waitFor(() => v.ok() > 20 && proxied.ok() > 20, 60_000, 'load');
  await Promise.all([v.stop(), proxied.stop()]);
  assert.deepEqual([...v.failures, ...proxied.failures], []);
  assert.ok(v.bodies.has('v3'));
  assert.equal(s.cli.messages(/^config reloaded$/).filter((l) => l.worker === 'primary').length, 3);
  assert.equal(s.cli.messages(/^config reloaded$/).filter((l) => typeof l.worker === 'number').length, 6);
});

test('SIGTERM drains every worker: a request in flight completes, then all exit 0', LIMIT, async (t) => {
  const held: ((body: string) => void)[] = [];
  const up: TestUpstream = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push((b) => res.end(b));
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'routes: [{ upstream: app }]\n'));
  const pending = request(`${s.url}/slow`);
  await waitFor(() => held.length === 1, 10_000, 'the request upstream');
  const pids = (await status(s.admin)).workers.map((w) => w.pid!);
  s.cli.signal('SIGTERM');
  await s.cli.until(() => s.cli.messages(/worker shutting down/).length === 2, 'both workers draining');
  held[0]!('done');
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'done');
  const exit = await s.cli.waitForExit(20_000);
  assert.deepEqual(exit, { code: 0, signal: null });
  const stopped = s.cli.messages(/^stopped$/);
  assert.deepEqual(new Set(stopped.map((l) => l.worker)), new Set([1, 2, 'primary']));
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
});
