// Purge (issue #12): by exact URL, by key prefix and by tag (the upstream's Cache-Tag or
// Surrogate-Key, never sent downstream) through the admin API (token-protected) and `usher
// purge`, in a memory and a disk store; and the PURGE method on a route, only from its list.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DiskStore } from '../../src/cache/disk.js';
import { admin } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { request, type Reply } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, type TestUsher } from '../helpers/usher.js';

const TOKEN = 'purge-test-token-0123456789';
const TAGS: Record<string, Record<string, string>> = {
  '/tagged/1': { 'cache-tag': 'product-1,catalog' },
  '/tagged/2': { 'surrogate-key': 'product-2 catalog' },
  '/tagged/3': { 'cache-tag': 'product-3' },
};

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ up: TestUpstream; u: TestUsher; counts: Map<string, number>; dir: string }> {
  const counts = new Map<string, number>();
  const up = await startUpstream('origin', (req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', ...TAGS[path] });
    res.end(`${path} #${counts.get(path)}`);
  });
  const dir = await mkdtemp(join(tmpdir(), 'usher-purge-'));
  const u = await startUsher({
    admin: { address: '0.0.0.0:0', token: TOKEN },
    upstreams: { app: { servers: [up.url] } },
    caches: { mem: { max_size: '1mb' }, disk: { type: 'disk', path: dir, max_size: '1mb' } },
    routes: [
      { match: { path: '/disk/' }, upstream: 'app', cache: 'disk' },
      { match: { path: '/guarded/' }, upstream: 'app', cache: { store: 'mem', purge: { allow: '10.0.0.0/8' } } },
      { upstream: 'app', cache: { store: 'mem', purge: { allow: ['127.0.0.1', '::1'] } } },
    ],
  });
  await (u.usher.runtime.caches.get('disk') as DiskStore).start();
  t.after(async () => {
    await u.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { up, u, counts, dir };
}

const get = (u: TestUsher, path: string, method = 'GET'): Promise<Reply> => request(`${u.url}${path}`, { method, headers: { host: 'site.test' } });
const purge = (u: TestUsher, body: unknown) => admin(u, 'POST', '/cache/purge', { body: JSON.stringify(body), token: TOKEN });
const hit = (r: Reply) => /^usher; hit/.test(String(r.headers['cache-status']));

async function fill(u: TestUsher, paths: string[]): Promise<void> {
  for (const p of paths) await get(u, p);
  for (const p of paths) assert.ok(hit(await get(u, p)), `${p} is stored`);
}

test('purge through the admin API: by URL, by prefix, by tag; the tag fields never go downstream', async (t) => {
  const { u, counts, dir } = await setup(t);
  const paths = ['/a', '/a?x=1', '/blog/1', '/blog/2', '/tagged/1', '/tagged/2', '/tagged/3', '/disk/1', '/disk/2'];
  await fill(u, paths);
  for (const p of ['/tagged/1', '/tagged/2']) {
    const r = await get(u, p);
    assert.equal(r.headers['cache-tag'], undefined, `${p}: no Cache-Tag downstream`);
    assert.equal(r.headers['surrogate-key'], undefined, `${p}: no Surrogate-Key downstream`);
  }
  counts.clear();

  assert.equal((await admin(u, 'POST', '/cache/purge', { body: JSON.stringify({ url: 'http://site.test/a' }) })).status, 401, 'token-protected like the rest');
  const byUrl = await purge(u, { url: 'http://SITE.test:80/a' });
  assert.equal(byUrl.status, 200);
  assert.deepEqual(byUrl.json, { purged: 1, stores: { mem: 1, disk: 0 } });
  assert.ok(!hit(await get(u, '/a')), '/a went upstream');
  assert.ok(hit(await get(u, '/a?x=1')), 'another query is another key');

  assert.equal((await purge(u, { prefix: 'http://site.test/blog/' })).json.purged, 2);
  assert.ok(!hit(await get(u, '/blog/1')));
  assert.ok(!hit(await get(u, '/blog/2')));

  const tag = await purge(u, { tag: 'catalog' });
  assert.equal(tag.json.purged, 2);
  assert.ok(!hit(await get(u, '/tagged/1')));
  assert.ok(!hit(await get(u, '/tagged/2')));
  assert.ok(hit(await get(u, '/tagged/3')), 'an untagged one stays');
  assert.equal((await purge(u, { tag: 'product-3', store: 'mem' })).json.purged, 1);

  // A disk store's files go with its entries.
  const files = async () => {
    let n = 0;
    for (const d of await readdir(dir)) if (d !== 'tmp') n += (await readdir(join(dir, d))).length;
    return n;
  };
  assert.equal(await files(), 2);
  assert.deepEqual((await purge(u, { prefix: 'http://site.test/disk/', store: 'disk' })).json, { purged: 2, stores: { disk: 2 } });
  for (let i = 0; i < 200 && (await files()) > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await files(), 0, 'the files are removed');
  assert.ok(!hit(await get(u, '/disk/1')));
  assert.equal(counts.get('/disk/1'), 1);

  // Bad requests get a reason.
  const bad: [unknown, number, RegExp][] = [
    [{ url: 'http://site.test/a', tag: 'x' }, 400, /exactly one of/],
    [{}, 400, /exactly one of/],
    [{ url: '/relative' }, 400, /absolute http or https URL/],
    [{ tag: 5 }, 400, /non-empty string/],
    [{ tag: 'x', store: 'nope' }, 404, /no cache store named "nope"/],
    ['not an object', 400, /expected a JSON body/],
  ];
  for (const [body, status, message] of bad) {
    const r = await purge(u, body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match(String(r.json.message), message);
  }
  const text = await admin(u, 'POST', '/cache/purge', { body: '{not json', token: TOKEN });
  assert.equal(text.status, 400);
});

test('the PURGE method: allowed clients purge the URL\'s key in the route\'s store, others get 403', async (t) => {
  const { up, u, counts } = await setup(t);
  await fill(u, ['/p', '/guarded/p']);
  const r = await get(u, '/p', 'PURGE');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { purged: 1 });
  assert.deepEqual(JSON.parse((await get(u, '/p', 'PURGE')).body), { purged: 0 }, 'nothing left to purge');
  assert.ok(!hit(await get(u, '/p')));
  assert.equal(counts.get('/p'), 2);
  const denied = await get(u, '/guarded/p', 'PURGE');
  assert.equal(denied.status, 403);
  assert.match(denied.body, /access_denied/);
  assert.ok(hit(await get(u, '/guarded/p')), 'a refused PURGE removed nothing');
  assert.equal(counts.get('/guarded/p'), 1);
  assert.ok(!up.requests.some((x) => x.method === 'PURGE'), 'PURGE never reaches the upstream');
});

test('usher purge: the CLI calls the admin API', async (t) => {
  const { u } = await setup(t);
  await fill(u, ['/cli/1', '/tagged/3']);
  const port = u.usher.admin!.address().port;
  const ok = await runCli(['purge', '--url', 'http://site.test/cli/1', '--admin', `127.0.0.1:${port}`, '--token', TOKEN], 60_000);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /purged 1 stored response \(mem: 1, disk: 0\)/);
  assert.ok(!hit(await get(u, '/cli/1')));
  const json = await runCli(['purge', '--tag', 'product-3', '--store', 'mem', '--json', '--admin', `127.0.0.1:${port}`, '--token', TOKEN], 60_000);
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.stdout), { purged: 1, stores: { mem: 1 } });
  const refused = await runCli(['purge', '--tag', 'x', '--admin', `127.0.0.1:${port}`, '--token', 'wrong-token-wrong-token'], 60_000);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /refused the token/);
  const noStore = await runCli(['purge', '--tag', 'x', '--store', 'nope', '--admin', `127.0.0.1:${port}`, '--token', TOKEN], 60_000);
  assert.equal(noStore.code, 1);
  assert.match(noStore.stderr, /no cache store named "nope"/);
  const usage = await runCli(['purge', '--admin', `127.0.0.1:${port}`], 60_000);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /exactly one of --url, --prefix or --tag/);
});
