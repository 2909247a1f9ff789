// Targeted cache-control fields (RFC 9213) over real sockets: CDN-Cache-Control and an
// operator's own field take precedence over Cache-Control (and Expires) for this cache, in
// target-list order; an invalid or empty one is ignored; the operator's field never goes
// downstream, CDN-Cache-Control does unless forward_cdn_cache_control is false; a field not on
// the list changes nothing and passes through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, type Reply } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, type TestUsher } from '../helpers/usher.js';

const future = () => new Date(Date.now() + 600_000).toUTCString();

async function setup(t: { after: (fn: () => Promise<void>) => void }, route: Record<string, unknown>, answers: Record<string, Record<string, string>>): Promise<{ u: TestUsher; counts: Map<string, number> }> {
  const counts = new Map<string, number>();
  const up = await startUpstream('origin', (req, res) => {
    const path = req.url!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', ...answers[path] });
    res.end(`${path} #${counts.get(path)}`);
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, caches: { main: { max_size: '1mb' } }, routes: [{ upstream: 'app', cache: { store: 'main', ...route } }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { u, counts };
}

const get = (u: TestUsher, path: string): Promise<Reply> => request(`${u.url}${path}`);

test('CDN-Cache-Control over Cache-Control and Expires (the default target list), forwarded downstream', async (t) => {
  const cases: { path: string; headers: Record<string, string>; stored: boolean; why: string }[] = [
    { path: '/cdn-longer', headers: { 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' }, stored: true, why: 'CDN-Cache-Control lets it be stored where Cache-Control says no-store' },
    { path: '/cdn-none', headers: { 'cdn-cache-control': 'none', 'cache-control': 'no-store', expires: future() }, stored: false, why: '"none": a valid field without freshness; Cache-Control and Expires ignored, so nothing makes it fresh' },
    { path: '/cdn-no-store', headers: { 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=600' }, stored: false, why: 'CDN-Cache-Control: no-store wins' },
    { path: '/cdn-invalid', headers: { 'cdn-cache-control': 'Max-Age=600', 'cache-control': 'max-age=600' }, stored: true, why: 'an invalid dictionary is ignored: Cache-Control decides' },
    { path: '/cdn-invalid-2', headers: { 'cdn-cache-control': 'max-age=600,', 'cache-control': 'no-store' }, stored: false, why: 'a trailing comma does not parse: Cache-Control says no-store' },
    { path: '/cdn-empty', headers: { 'cdn-cache-control': '', 'cache-control': 'max-age=600' }, stored: true, why: 'an empty field is ignored' },
    { path: '/cdn-private', headers: { 'cdn-cache-control': 'private', 'cache-control': 'public, max-age=600' }, stored: false, why: 'private in the targeted field' },
    { path: '/expires-only', headers: { expires: future() }, stored: true, why: 'no targeted field: Expires counts as usual' },
    { path: '/other-target', headers: { 'other-cache-control': 'no-store', 'cache-control': 'max-age=600' }, stored: true, why: 'a field not on the target list changes nothing' },
  ];
  const { u, counts } = await setup(t, {}, Object.fromEntries(cases.map((c) => [c.path, c.headers])));
  for (const c of cases) {
    const first = await get(u, c.path);
    await get(u, c.path);
    assert.equal(counts.get(c.path), c.stored ? 1 : 2, `${c.path}: ${c.why}`);
    // Cache-Control goes downstream as the upstream sent it; CDN-Cache-Control too (forwarded by default).
    if (c.headers['cache-control'] !== undefined) assert.equal(first.headers['cache-control'], c.headers['cache-control'], c.path);
    if (c.headers['cdn-cache-control'] !== undefined) assert.equal(first.headers['cdn-cache-control'], c.headers['cdn-cache-control'], `${c.path}: CDN-Cache-Control is forwarded`);
    if (c.headers['other-cache-control'] !== undefined) assert.equal(first.headers['other-cache-control'], 'no-store', 'a field not on the list passes through');
  }
  const hit = await get(u, '/cdn-longer');
  assert.match(String(hit.headers['cache-status']), /^usher; hit; ttl=(\d+)/);
  assert.ok(Number(/ttl=(\d+)/.exec(String(hit.headers['cache-status']))![1]) > 500, 'fresh by CDN-Cache-Control\'s max-age');
  assert.equal(hit.headers['cdn-cache-control'], 'max-age=600', 'a hit carries it too');
});

test('an operator\'s targeted field first in the list: over CDN-Cache-Control, never sent downstream; CDN-Cache-Control removed when not forwarded', async (t) => {
  const answers = {
    '/mine': { 'usher-cache-control': 'max-age=600', 'cdn-cache-control': 'no-store', 'cache-control': 'no-store' },
    '/mine-invalid': { 'usher-cache-control': 'max-age="600"x', 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' },
    '/mine-no-store': { 'usher-cache-control': 'no-store', 'cdn-cache-control': 'max-age=600', 'cache-control': 'max-age=600' },
    '/cdn-only': { 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' },
  };
  const { u, counts } = await setup(t, { targeted_fields: ['Usher-Cache-Control', 'CDN-Cache-Control'], forward_cdn_cache_control: false }, answers);
  const expect: Record<string, boolean> = { '/mine': true, '/mine-invalid': true, '/mine-no-store': false, '/cdn-only': true };
  for (const [path, stored] of Object.entries(expect)) {
    const a = await get(u, path);
    const b = await get(u, path);
    assert.equal(counts.get(path), stored ? 1 : 2, path);
    for (const r of [a, b]) {
      assert.equal(r.headers['usher-cache-control'], undefined, `${path}: the operator's field is this cache's own`);
      assert.equal(r.headers['cdn-cache-control'], undefined, `${path}: not forwarded`);
      assert.equal(r.headers['cache-control'], (answers as Record<string, Record<string, string>>)[path]!['cache-control']);
    }
  }
});
