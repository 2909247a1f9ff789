// The serving isolate never compiles the config validator: its generated code fills the
// transition trees of V8's shared object-literal maps, after which objects of literals first met
// later (Node's nextTick records, undici's and http's per-request objects) each get a new hidden
// class and go through the runtime — +40% CPU per proxied small GET. So `usher serve` loads its
// config in a worker thread at start, as on reload (src/config/load-off-thread.ts). A probe
// loaded into the real CLI process reports whether a new literal site still shares its map.
// With the config loaded on the serving thread the probe reports "fresh": these tests failed
// when the start-up load and the admin API's were put back on it (checked by hand; the probe's
// USHER_PROBE_LOAD_ON_THREAD=1 shows it too). Not as a test of its own: how soon the maps fill
// depends on the heap (on Node 24 it once stayed "shared").
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, serve, tempDir, writeFile, type Serving } from '../helpers/cli.js';
import { request } from '../helpers/client.js';

const LIMIT = { timeout: 120_000 };
const PROBE = ['--allow-natives-syntax', '--import', join(repoRoot, 'test', 'fixtures', 'literal-maps-probe.js')];

/** The probe's verdict printed after one request was served (so the serving path has run). */
async function verdict(s: Serving): Promise<string> {
  const res = await request(`${s.url}/`);
  assert.equal(res.status, 200, res.body);
  const from = s.cli.stderr.length;
  return s.cli.until(() => /literal-maps-probe: (\w+)/.exec(s.cli.stderr.slice(from))?.[1], 'a probe line after the request');
}

const CONFIG = 'listeners: [{ address: "127.0.0.1:0" }]\nroutes:\n  - respond: { status: 200, body: "ok\\n" }\nlog: { access_log: false }\n';

function config(t: { after(fn: () => void): void }, extra = ''): string {
  const dir = tempDir(t);
  return writeFile(join(dir, 'usher.yaml'), CONFIG + extra);
}

test('usher serve -c FILE: the serving isolate keeps shared literal maps (config loaded off-thread)', LIMIT, async (t) => {
  const s = await serve(t, ['--config', config(t)], PROBE);
  assert.equal(await verdict(s), 'shared');
});

test('usher serve (the built-in demo): the serving isolate keeps shared literal maps', LIMIT, async (t) => {
  const s = await serve(t, ['--listen', '127.0.0.1:0'], PROBE);
  assert.equal(await verdict(s), 'shared');
});

test('POST /config/plan, valid and invalid candidates: checked off the serving thread too', LIMIT, async (t) => {
  const s = await serve(t, ['--config', config(t, 'admin: { address: "127.0.0.1:0" }\n')], PROBE);
  const port = await s.cli.until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)?.[1], 'the admin banner line');
  const plan = (body: string) => request(`http://127.0.0.1:${port}/config/plan`, { method: 'POST', body });
  assert.equal((await plan(CONFIG)).status, 200);
  // A schema error compiles the all-errors validator, the larger of the two.
  const bad = await plan('listeners: 5\nroutes: [{ upstream: nowhere }]\n');
  assert.equal(bad.status, 422, bad.body);
  assert.equal(await verdict(s), 'shared');
});
