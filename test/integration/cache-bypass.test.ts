// Bypass conditions (a cookie, header or query parameter present with a value other than "" and
// "0": not looked up, not stored), `usher explain` naming the store and key for a request, and the
// cache's metrics on the admin /metrics (read from the stores when scraped).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DiskStore } from '../../src/cache/disk.js';
import { explainRequest } from '../../src/cli/explain.js';
import { Runtime } from '../../src/server/runtime.js';
import { admin } from '../helpers/admin.js';
import { runCli, tempDir, writeFile } from '../helpers/cli.js';
import { request, type Reply } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, type TestUsher } from '../helpers/usher.js';

const ROUTE = { store: 'main', bypass: { cookies: ['session'], headers: ['X-No-Cache'], query: ['nocache'] }, key: { headers: ['x-tenant'] } };

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ u: TestUsher; counts: Map<string, number>; dir: string }> {
  const counts = new Map<string, number>();
  const up = await startUpstream('origin', (req, res) => {
    counts.set(req.url!, (counts.get(req.url!) ?? 0) + 1);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
    res.end(`${req.url} #${counts.get(req.url!)}`);
  });
  const dir = await mkdtemp(join(tmpdir(), 'usher-bypass-'));
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [up.url] } },
    caches: { main: { max_size: '1mb' }, files: { type: 'disk', path: dir, max_size: '1mb' } },
    routes: [{ match: { path: '/disk/' }, upstream: 'app', cache: 'files' }, { upstream: 'app', cache: ROUTE }],
  });
  await (u.usher.runtime.caches.get('files') as DiskStore).start();
  t.after(async () => {
    await u.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { u, counts, dir };
}

const get = (u: TestUsher, path: string, headers: Record<string, string> = {}): Promise<Reply> => request(`${u.url}${path}`, { headers: { host: 'site.test', ...headers } });

test('bypass: a request meeting a condition goes upstream and its response is not stored; "" and "0" do not count', async (t) => {
  const { u, counts } = await setup(t);
  assert.equal((await get(u, '/a')).body, '/a #1');
  const cases: { headers?: Record<string, string>; path?: string; bypass: string | null }[] = [
    { headers: { cookie: 'session=abc; theme=dark' }, bypass: 'cookie session' },
    { headers: { 'x-no-cache': '1' }, bypass: 'header x-no-cache' },
    { headers: { cookie: 'session=0' }, bypass: null },
    { headers: { cookie: 'session=' }, bypass: null },
    { headers: { 'x-no-cache': '0' }, bypass: null },
    { headers: { cookie: 'other=1' }, bypass: null },
  ];
  let upstream = 1;
  for (const c of cases) {
    const r = await get(u, c.path ?? '/a', c.headers);
    if (c.bypass === null) {
      assert.match(String(r.headers['cache-status']), /^usher; hit/, JSON.stringify(c.headers));
      assert.equal(r.body, '/a #1');
    } else {
      upstream++;
      assert.equal(r.headers['cache-status'], `usher; fwd=bypass; detail="${c.bypass}"`);
      assert.equal(r.body, `/a #${upstream}`);
    }
  }
  assert.equal(counts.get('/a'), upstream);
  // The bypassed responses were not stored: the stored one is still the first.
  assert.equal((await get(u, '/a')).body, '/a #1');
  // ?nocache=1 is another key, and a bypass: fetched every time, never stored.
  for (let i = 1; i <= 2; i++) assert.equal((await get(u, '/q?nocache=1')).body, `/q?nocache=1 #${i}`);
  await get(u, '/q?nocache=0');
  assert.match(String((await get(u, '/q?nocache=0')).headers['cache-status']), /^usher; hit/, 'nocache=0 is cached');
});

test('usher explain: the store, the key (with its extra parts) and whether the request would be looked up', async (t) => {
  const dir = tempDir(t);
  const cfg = config({ upstreams: { app: { servers: ['http://127.0.0.1:9'] } }, caches: { main: { max_size: '1mb' } }, routes: [{ upstream: 'app', cache: { ...ROUTE, purge: { allow: '10.0.0.0/8' } } }] });
  const { runtime } = Runtime.build(cfg);
  const explain = (method: string, url: string, headers: string[] = [], client = '127.0.0.1') => {
    const p = new URL(url);
    return explainRequest(runtime, method, url, { scheme: 'http', authority: p.host, path: `${p.pathname}${p.search}` }, ['Host', p.host, ...headers], client).cache!;
  };
  const plain = explain('GET', 'http://Site.test:80/a/../b?x=1', ['X-Tenant', 'acme']);
  assert.deepEqual(plain, { store: 'main', type: 'memory', key: 'http://site.test/b?x=1', secondary: 'h:acme', lookup: true, why: 'looked up; a miss is fetched and stored if the response may be' });
  assert.equal(explain('GET', 'http://site.test:8080/b').key, 'http://site.test:8080/b');
  const bypass = explain('GET', 'http://site.test/b', ['Cookie', 'session=1']);
  assert.equal(bypass.lookup, false);
  assert.match(bypass.why, /bypass \(cookie session\)/);
  assert.match(explain('POST', 'http://site.test/b').why, /unsafe: a 2xx\/3xx answer invalidates the key/);
  assert.match(explain('HEAD', 'http://site.test/b').why, /answered from a stored GET/);
  assert.match(explain('PURGE', 'http://site.test/b').why, /PURGE refused: 403/);
  assert.match(explain('PURGE', 'http://site.test/b', [], '10.1.1.1').why, /PURGE: removes every variant/);
  // The CLI's text.
  const file = writeFile(join(dir, 'usher.yaml'), `listeners: [{ address: 127.0.0.1:0 }]\nupstreams: { app: { servers: [http://127.0.0.1:9] } }\ncaches: { main: { type: memory } }\nroutes:\n  - upstream: app\n    cache: { store: main, bypass: { cookies: [session] } }\n`);
  const r = await runCli(['explain', '-c', file, 'GET', 'http://site.test/x?y=1'], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cache: store main \(memory\), key http:\/\/site\.test\/x\?y=1\n {2}looked up; a miss is fetched and stored if the response may be$/m);
  assert.match(r.stdout, /cache \(store main, memory; key: scheme, host, path, query; .*bypass: cookie session\)/);
});

test('cache metrics on the admin /metrics: hits, misses, stale, stores, bytes and objects per store', async (t) => {
  const { u } = await setup(t);
  await get(u, '/m1'); // miss, stored
  await get(u, '/m1'); // hit
  await get(u, '/m1'); // hit
  await get(u, '/m2'); // miss
  await get(u, '/disk/1'); // miss (disk)
  await get(u, '/disk/1', { 'x-probe': '1' }); // hit (disk)
  await get(u, '/m1', { cookie: 'session=1' }); // bypass: no lookup
  const text = (await admin(u, 'GET', '/metrics')).body;
  const value = (name: string, labels: string) => {
    const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `${name}{${labels}} in:\n${text.split('\n').filter((l) => l.startsWith('usher_cache')).join('\n')}`);
    return Number(m[1]);
  };
  const main = u.usher.runtime.caches.get('main')!;
  const files = u.usher.runtime.caches.get('files')!;
  assert.equal(value('usher_cache_hits_total', 'store="main"'), 2);
  assert.equal(value('usher_cache_misses_total', 'store="main"'), 2);
  assert.equal(value('usher_cache_stale_total', 'store="main"'), 0);
  assert.equal(value('usher_cache_stores_total', 'store="main"'), 2);
  assert.equal(value('usher_cache_hits_total', 'store="files"'), 1);
  assert.equal(value('usher_cache_misses_total', 'store="files"'), 1);
  assert.equal(value('usher_cache_stored_objects', 'store="main",type="memory"'), 2);
  assert.equal(value('usher_cache_stored_objects', 'store="files",type="disk"'), 1);
  assert.equal(value('usher_cache_stored_bytes', 'store="main",type="memory"'), main.bytes);
  assert.equal(value('usher_cache_stored_bytes', 'store="files",type="disk"'), files.bytes);
  assert.ok(files.bytes > 0);
  assert.match(text, /# TYPE usher_cache_hits_total counter/);
  assert.match(text, /# TYPE usher_cache_stored_bytes gauge/);
});
