// cache: usher in front of a real origin that counts the requests it gets, over real sockets.
// Every RFC 9111 point as a table-driven case: what is stored (§3), freshness (§4.2), Age
// (§4.2.3), Vary (§4.1), request directives (§5.2.1), revalidation and the 304's header update
// (§3.2, §4.3.4), client conditionals and HEAD from a stored GET, invalidation (§4.4); then
// collapsing, streaming while storing, max_object_size and eviction under the memory bound.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import zlib from 'node:zlib';
import type { MemoryStore } from '../../src/cache/store.js';
import type { Cache } from '../../src/filters/cache/index.js';
import { loadConfigObject } from '../../src/config/index.js';
import { request, type Reply } from '../helpers/client.js';
import { h2request, h2session } from '../helpers/h2.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

type Answer = { status?: number; headers?: Record<string, string | string[]>; body?: string };
type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => Answer | void;

/** An origin whose answer per path is a function of the request and of how many that path got. */
class Origin {
  readonly counts = new Map<string, number>();
  readonly routes = new Map<string, Handler>();
  up!: TestUpstream;

  async start(): Promise<void> {
    this.up = await startUpstream('origin', (req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      const n = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, n);
      req.resume();
      const h = this.routes.get(path);
      const a = h === undefined ? { status: 404, body: 'none' } : h(req, res, n);
      if (a === undefined) return; // the handler answers itself
      const body = a.body ?? `${path} #${n}`;
      res.writeHead(a.status ?? 200, { 'content-type': 'text/plain', ...(a.status === 304 || a.status === 204 ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...a.headers });
      res.end(a.status === 304 || a.status === 204 || req.method === 'HEAD' ? undefined : body);
    });
  }

  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }
}

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { store?: Record<string, unknown>; route?: Record<string, unknown> | string; extra?: Record<string, unknown>; listeners?: unknown[] } = {},
): Promise<{ o: Origin; u: TestUsher; store: MemoryStore }> {
  const o = new Origin();
  await o.start();
  const u = await startUsher({
    ...(opts.listeners === undefined ? {} : { listeners: opts.listeners }),
    upstreams: { app: { servers: [o.up.url] } },
    caches: { main: { max_size: '8mb', ...opts.store } },
    routes: [{ upstream: 'app', cache: opts.route ?? 'main', ...opts.extra }],
  });
  t.after(async () => {
    await u.close();
    await o.up.close();
  });
  return { o, u, store: u.usher.runtime.caches.get('main')! };
}

const get = (u: TestUsher, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => request(`${u.url}${path}`, { method, headers });
const httpDate = (offsetSeconds: number) => new Date(Date.now() + offsetSeconds * 1000).toUTCString();

test('what is stored (RFC 9111 §3): two GETs, one upstream request when stored', async (t) => {
  const { o, u } = await setup(t);
  const cases: { name: string; status?: number; headers?: Record<string, string | string[]>; req?: Record<string, string>; stored: boolean }[] = [
    { name: 'max-age', headers: { 'cache-control': 'max-age=60' }, stored: true },
    { name: 'public without max-age, with Last-Modified', headers: { 'cache-control': 'public', 'last-modified': httpDate(-86400 * 10) }, stored: true },
    { name: 'no-store', headers: { 'cache-control': 'no-store, max-age=60' }, stored: false },
    { name: 'private', headers: { 'cache-control': 'private, max-age=60' }, stored: false },
    { name: 'private with field names', headers: { 'cache-control': 'private="x-user", max-age=60' }, stored: false },
    { name: 'must-understand overrides no-store for a known status', headers: { 'cache-control': 'must-understand, no-store, max-age=60' }, stored: true },
    { name: 'must-understand with a status usher does not know', status: 299, headers: { 'cache-control': 'must-understand, no-store, max-age=60' }, stored: false },
    { name: 'a status usher does not know, with max-age (§3: any final status)', status: 299, headers: { 'cache-control': 'max-age=60' }, stored: true },
    { name: 'heuristic from Last-Modified (10% of 10 days, capped at 24h)', headers: { 'last-modified': httpDate(-86400 * 10) }, stored: true },
    { name: 'no freshness at all: stored stale, fetched again', headers: {}, stored: false },
    { name: 'Expires in the future', headers: { expires: httpDate(600), date: httpDate(0) }, stored: true },
    { name: 'invalid Expires is already expired', headers: { expires: '0' }, stored: false },
    { name: 'an Expires Date.parse would take (UTC, not GMT) is invalid', headers: { expires: 'Thu, 18 Aug 2050 02:01:18 UTC', date: httpDate(0) }, stored: false },
    { name: 'an Expires with a 1-digit hour is invalid', headers: { expires: 'Thu, 18 Aug 2050 2:01:18 GMT', date: httpDate(0) }, stored: false },
    { name: 'Age as a list: the first member counts (stale)', headers: { 'cache-control': 'max-age=3600', age: '7200, 0', date: httpDate(0) }, stored: false },
    { name: 'Age as a list: the first member counts (fresh)', headers: { 'cache-control': 'max-age=3600', age: '0, 7200', date: httpDate(0) }, stored: true },
    { name: 's-maxage over max-age', headers: { 'cache-control': 'max-age=0, s-maxage=60' }, stored: true },
    { name: 'max-age over Expires', headers: { 'cache-control': 'max-age=0', expires: httpDate(600) }, stored: false },
    { name: 'conflicting max-age values are stale', headers: { 'cache-control': 'max-age=60, max-age=0' }, stored: false },
    { name: 'Authorization without permission', headers: { 'cache-control': 'max-age=60' }, req: { authorization: 'Basic eDp5' }, stored: false },
    { name: 'Authorization with public', headers: { 'cache-control': 'public, max-age=60' }, req: { authorization: 'Basic eDp5' }, stored: true },
    { name: 'Authorization with s-maxage', headers: { 'cache-control': 's-maxage=60' }, req: { authorization: 'Basic eDp5' }, stored: true },
    { name: 'Authorization with must-revalidate', headers: { 'cache-control': 'must-revalidate, max-age=60' }, req: { authorization: 'Basic eDp5' }, stored: true },
    { name: 'Set-Cookie is not stored by default', headers: { 'cache-control': 'max-age=60', 'set-cookie': 'a=1' }, stored: false },
    { name: 'Vary: * never matches', headers: { 'cache-control': 'max-age=60', vary: '*' }, stored: false },
    { name: '302 with max-age', status: 302, headers: { 'cache-control': 'max-age=60', location: '/x' }, stored: true },
    { name: '302 without freshness', status: 302, headers: { location: '/x', 'last-modified': httpDate(-86400) }, stored: false },
    { name: '404 heuristically cacheable', status: 404, headers: { 'last-modified': httpDate(-86400) }, stored: true },
    { name: '500 without freshness', status: 500, headers: { 'last-modified': httpDate(-86400) }, stored: false },
    { name: '500 with max-age', status: 500, headers: { 'cache-control': 'max-age=60' }, stored: true },
    { name: '206 is never stored whole', status: 206, headers: { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-3/10' }, stored: false },
    { name: 'request no-store', headers: { 'cache-control': 'max-age=60' }, req: { 'cache-control': 'no-store' }, stored: false },
  ];
  for (const [i, c] of cases.entries()) {
    const path = `/s${i}`;
    o.routes.set(path, () => ({ status: c.status ?? 200, headers: c.headers ?? {} }));
    const a = await get(u, path, c.req);
    const b = await get(u, path, c.req);
    assert.equal(a.status, c.status ?? 200, c.name);
    // The response being stored keeps the upstream's Content-Length (the copy changes no byte).
    assert.equal(a.headers['content-length'], String(Buffer.byteLength(`${path} #1`)), c.name);
    assert.equal(b.body, c.stored ? `${path} #1` : `${path} #2`, c.name);
    assert.equal(o.count(path), c.stored ? 1 : 2, c.name);
    assert.match(String(a.headers['cache-status']), /^usher; fwd=uri-miss/, c.name);
    assert.match(String(b.headers['cache-status']), c.stored ? /^usher; hit; ttl=/ : /^usher; fwd=/, c.name);
  }
});

test('Set-Cookie: strip stores the response without it; the filling client still gets it', async (t) => {
  const { o, u } = await setup(t, { route: { store: 'main', set_cookie: 'strip' } });
  o.routes.set('/c', () => ({ headers: { 'cache-control': 'max-age=60', 'set-cookie': 'sid=1' } }));
  const a = await get(u, '/c');
  const b = await get(u, '/c');
  assert.deepEqual(a.headers['set-cookie'], ['sid=1']);
  assert.equal(b.headers['set-cookie'], undefined);
  assert.equal(o.count('/c'), 1);
});

test('Age (§4.2.3): the upstream\'s Age and Date count; Age is sent on hits', async (t) => {
  const { o, u } = await setup(t);
  o.routes.set('/age30', () => ({ headers: { 'cache-control': 'max-age=600', age: '30', date: httpDate(0) } }));
  o.routes.set('/old-date', () => ({ headers: { 'cache-control': 'max-age=60', date: httpDate(-100) } }));
  o.routes.set('/age-over', () => ({ headers: { 'cache-control': 'max-age=60', age: '100' } }));
  await get(u, '/age30');
  const hit = await get(u, '/age30');
  const age = Number(hit.headers.age);
  // At least what the origin said; at most that plus the seconds this test has been running.
  assert.ok(age >= 30 && age < 300, `age ${age}`);
  const ttl = Number(/ttl=(-?\d+)/.exec(String(hit.headers['cache-status']))![1]);
  assert.ok(ttl <= 570 && ttl > 300, `ttl ${ttl}`);
  // A Date 100 s old with max-age=60: apparent age 100, stale on arrival.
  await get(u, '/old-date');
  await get(u, '/old-date');
  assert.equal(o.count('/old-date'), 2);
  await get(u, '/age-over');
  await get(u, '/age-over');
  assert.equal(o.count('/age-over'), 2);
  // A miss passes the upstream's Age as it is.
  assert.equal((await get(u, '/age-over')).headers.age, '100');
});

test('request directives (§5.2.1): no-cache, max-age, min-fresh, max-stale, only-if-cached, Pragma', async (t) => {
  const { o, u } = await setup(t);
  o.routes.set('/fresh', () => ({ headers: { 'cache-control': 'max-age=600' } }));
  o.routes.set('/stale', () => ({ headers: { 'cache-control': 'max-age=10', age: '20' } }));
  o.routes.set('/stale-mr', () => ({ headers: { 'cache-control': 'max-age=10, must-revalidate', age: '20' } }));
  await get(u, '/fresh');
  const cases: [string, Record<string, string>, boolean][] = [
    ['plain', {}, true],
    ['no-cache', { 'cache-control': 'no-cache' }, false],
    ['Pragma: no-cache without Cache-Control', { pragma: 'no-cache' }, false],
    ['max-age=0', { 'cache-control': 'max-age=0' }, false],
    ['max-age=3600', { 'cache-control': 'max-age=3600' }, true],
    ['min-fresh beyond the lifetime', { 'cache-control': 'min-fresh=1000' }, false],
    ['min-fresh within', { 'cache-control': 'min-fresh=10' }, true],
  ];
  for (const [name, headers, hit] of cases) {
    const before = o.count('/fresh');
    const r = await get(u, '/fresh', headers);
    assert.equal(o.count('/fresh'), hit ? before : before + 1, name);
    assert.match(String(r.headers['cache-status']), hit ? /hit/ : /fwd=request/, name);
  }
  await get(u, '/stale');
  const staleCases: [string, string, Record<string, string>, boolean][] = [
    ['stale without max-stale', '/stale', {}, false],
    ['max-stale without a value', '/stale', { 'cache-control': 'max-stale' }, true],
    ['max-stale large enough', '/stale', { 'cache-control': 'max-stale=100' }, true],
    ['max-stale too small', '/stale', { 'cache-control': 'max-stale=1' }, false],
  ];
  for (const [name, path, headers, hit] of staleCases) {
    const before = o.count(path);
    await get(u, path, headers);
    assert.equal(o.count(path), hit ? before : before + 1, name);
  }
  await get(u, '/stale-mr');
  await get(u, '/stale-mr', { 'cache-control': 'max-stale' });
  assert.equal(o.count('/stale-mr'), 2, 'must-revalidate: never served stale');
  // only-if-cached: 504 when nothing usable is stored, a hit when it is.
  const miss = await get(u, '/never', { 'cache-control': 'only-if-cached' });
  assert.equal(miss.status, 504);
  assert.match(miss.body, /cache_only_if_cached/);
  assert.equal(o.count('/never'), 0);
  assert.equal((await get(u, '/fresh', { 'cache-control': 'only-if-cached' })).status, 200);
});

test('revalidation (§4.3): If-None-Match / If-Modified-Since upstream; a 304 updates the stored fields (§3.2)', async (t) => {
  const { o, u } = await setup(t);
  const seen: Record<string, string | undefined>[] = [];
  o.routes.set('/etag', (req, _res, n) => {
    seen.push({ inm: req.headers['if-none-match'], ims: req.headers['if-modified-since'] });
    if (n === 1) return { headers: { etag: '"v1"', 'cache-control': 'max-age=0', 'x-version': '1' }, body: 'body one' };
    return { status: 304, headers: { etag: '"v1"', 'cache-control': 'max-age=600', 'x-version': String(n) } };
  });
  const lm = httpDate(-3600);
  o.routes.set('/lm', (req, _res, n) => {
    seen.push({ inm: req.headers['if-none-match'], ims: req.headers['if-modified-since'] });
    if (n === 1) return { headers: { 'last-modified': lm, 'cache-control': 'no-cache, max-age=600' }, body: 'lm body' } as Answer;
    return { status: 304, headers: { 'last-modified': lm, 'x-checked': String(n) } };
  });
  const first = await get(u, '/etag');
  assert.equal(first.body, 'body one');
  const second = await get(u, '/etag');
  assert.equal(second.status, 200);
  assert.equal(second.body, 'body one');
  assert.equal(second.headers['x-version'], '2');
  assert.match(String(second.headers['cache-status']), /fwd=stale; fwd-status=304/);
  // The stored body goes out in place of the 304's, with its length (not the 304's, nor chunked).
  assert.equal(second.headers['content-length'], String('body one'.length));
  assert.deepEqual(seen[1], { inm: '"v1"', ims: undefined });
  // The 304's max-age=600 now applies: a hit with the updated field.
  const third = await get(u, '/etag');
  assert.equal(third.body, 'body one');
  assert.equal(third.headers['x-version'], '2');
  assert.match(String(third.headers['cache-status']), /hit/);
  assert.equal(o.count('/etag'), 2);
  // no-cache: revalidated on every use, with If-Modified-Since from Last-Modified.
  await get(u, '/lm');
  const r = await get(u, '/lm');
  assert.equal(r.body, 'lm body');
  assert.equal(r.headers['x-checked'], '2');
  assert.equal(seen[3]!.ims, lm);
  assert.equal(o.count('/lm'), 2);
  // A revalidation answered 200 replaces the stored response.
  o.routes.set('/etag', () => ({ headers: { etag: '"v2"', 'cache-control': 'max-age=600' }, body: 'body two' }));
  assert.equal((await get(u, '/etag', { 'cache-control': 'no-cache' })).body, 'body two');
  assert.equal((await get(u, '/etag')).body, 'body two');
});

test('client conditionals and HEAD are answered from a stored GET', async (t) => {
  const { o, u } = await setup(t);
  const lm = httpDate(-3600);
  o.routes.set('/doc', () => ({ headers: { etag: '"d1"', 'last-modified': lm, 'cache-control': 'max-age=600' }, body: 'the document' }));
  await get(u, '/doc');
  const cases: [string, Record<string, string>, number][] = [
    ['matching If-None-Match', { 'if-none-match': '"d1"' }, 304],
    ['weak comparison', { 'if-none-match': 'W/"d1"' }, 304],
    ['one of a list', { 'if-none-match': '"x", "d1"' }, 304],
    ['star', { 'if-none-match': '*' }, 304],
    ['other ETag', { 'if-none-match': '"d2"' }, 200],
    ['If-Modified-Since after Last-Modified', { 'if-modified-since': httpDate(0) }, 304],
    ['If-Modified-Since before Last-Modified', { 'if-modified-since': httpDate(-7200) }, 200],
    ['If-None-Match wins over If-Modified-Since', { 'if-none-match': '"d2"', 'if-modified-since': httpDate(0) }, 200],
  ];
  for (const [name, headers, status] of cases) {
    const r = await get(u, '/doc', headers);
    assert.equal(r.status, status, name);
    assert.equal(r.body, status === 304 ? '' : 'the document', name);
    if (status === 304) {
      assert.equal(r.headers.etag, '"d1"', name);
      assert.equal(r.headers['content-type'], undefined, name);
    }
  }
  const head = await get(u, '/doc', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String('the document'.length));
  assert.equal(head.body, '');
  assert.equal(o.count('/doc'), 1);
  // A miss is filled whole: the client's validators are not sent upstream.
  o.routes.set('/doc2', (req) => ({ headers: { etag: '"e"', 'cache-control': 'max-age=600', 'x-inm': String(req.headers['if-none-match']) } }));
  const filled = await get(u, '/doc2', { 'if-none-match': '"e"' });
  assert.equal(filled.status, 200);
  assert.equal(filled.headers['x-inm'], 'undefined');
});

test('invalidation after unsafe methods (§4.4), Location and Content-Location of the same origin', async (t) => {
  const { o, u } = await setup(t);
  for (const p of ['/a', '/b', '/c', '/d']) o.routes.set(p, (req) => (req.method === 'GET' ? { headers: { 'cache-control': 'max-age=600' } } : { status: 500 }));
  o.routes.set('/post-ok', () => ({ status: 201, headers: { location: '/b', 'content-location': `http://127.0.0.1:${u.port}/c` } }));
  o.routes.set('/post-elsewhere', () => ({ status: 201, headers: { location: 'http://other.example/d' } }));
  for (const p of ['/a', '/b', '/c', '/d']) await get(u, p);
  o.routes.set('/a', (req) => (req.method === 'GET' ? { headers: { 'cache-control': 'max-age=600' } } : { status: 204 }));
  await get(u, '/a', {}, 'POST');
  await get(u, '/post-ok', {}, 'POST');
  await get(u, '/post-elsewhere', {}, 'PUT');
  await get(u, '/d', {}, 'DELETE'); // the origin answers 500: an error invalidates nothing
  for (const p of ['/a', '/b', '/c', '/d']) await get(u, p);
  assert.deepEqual(['/a', '/b', '/c', '/d'].map((p) => o.count(p)), [3, 2, 2, 2]);
  // /d: one GET, the DELETE, and no second GET.
});

test('Vary (§4.1): one variant per value; Accept-Encoding normalised; compressed variants stored once', async (t) => {
  const { o, u } = await setup(t, { extra: { compress: { min_size: 0 } } });
  o.routes.set('/lang', (req) => ({ headers: { 'cache-control': 'max-age=600', vary: 'Accept-Language' }, body: `lang ${String(req.headers['accept-language'])}` }));
  const text = 'compress me please, '.repeat(100);
  o.routes.set('/text', () => ({ headers: { 'cache-control': 'max-age=600', 'content-type': 'text/html', etag: '"t"' }, body: text }));
  const steps: [Record<string, string>, string, string][] = [
    [{ 'accept-language': 'en' }, 'lang en', 'uri-miss'],
    [{ 'accept-language': 'fr' }, 'lang fr', 'vary-miss'],
    [{ 'accept-language': 'en' }, 'lang en', 'hit'],
    [{ 'accept-language': 'fr' }, 'lang fr', 'hit'],
    [{}, 'lang undefined', 'vary-miss'],
  ];
  for (const [headers, body, status] of steps) {
    const r = await get(u, '/lang', headers);
    assert.equal(r.body, body);
    assert.ok(String(r.headers['cache-status']).includes(status), `${JSON.stringify(headers)}: ${String(r.headers['cache-status'])}`);
  }
  assert.equal(o.count('/lang'), 3);
  const raw = (r: Reply) => Buffer.from(r.body, 'latin1');
  const gz1 = await request(`${u.url}/text`, { headers: { 'accept-encoding': 'gzip, br' } });
  assert.equal(gz1.headers['content-encoding'], 'br');
  const gz2 = await request(`${u.url}/text`, { headers: { 'accept-encoding': 'br;q=0.9,gzip' } });
  assert.match(String(gz2.headers['cache-status']), /hit/);
  assert.equal(gz2.headers['content-encoding'], 'br');
  assert.equal(gz2.headers.etag, 'W/"t"');
  assert.equal(gz2.headers.vary, 'Accept-Encoding');
  void raw;
  const plain = await get(u, '/text');
  assert.equal(plain.body, text);
  assert.match(String(plain.headers['cache-status']), /vary-miss/);
  assert.equal(o.count('/text'), 2);
});

test('a compressed hit decodes to the origin\'s bytes', async (t) => {
  const { o, u } = await setup(t, { extra: { compress: { min_size: 0, algorithms: ['gzip'] } } });
  const text = 'gzip me through the cache. '.repeat(200);
  o.routes.set('/g', () => ({ headers: { 'cache-control': 'max-age=600', 'content-type': 'text/plain' }, body: text }));
  const fetchRaw = () =>
    new Promise<{ headers: IncomingMessage['headers']; raw: Buffer }>((resolve, reject) => {
      void import('node:http').then(({ get: hget }) => {
        hget(`${u.url}/g`, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, raw: Buffer.concat(chunks) }));
        }).on('error', reject);
      });
    });
  const a = await fetchRaw();
  const b = await fetchRaw();
  assert.match(String(b.headers['cache-status']), /hit/);
  assert.equal(b.headers['content-encoding'], 'gzip');
  assert.equal(b.headers['content-length'], String(a.raw.length));
  assert.equal(zlib.gunzipSync(b.raw).toString(), text);
  assert.equal(o.count('/g'), 1);
});

test('200 concurrent misses for one key: exactly one upstream request', async (t) => {
  const { o, u, store } = await setup(t, { route: { store: 'main', collapse_timeout: '60s' } });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  o.routes.set('/hot', (_req, res) => {
    void gate.then(() => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
      res.end('hot body');
    });
  });
  const all = Array.from({ length: 200 }, () => get(u, '/hot'));
  const key = `http://127.0.0.1:${u.port}/hot`;
  await waitFor(() => (store.fill(key)?.waiters.length ?? 0) === 199, 20_000, '199 waiters');
  release();
  const replies = await Promise.all(all);
  assert.equal(o.count('/hot'), 1);
  assert.ok(replies.every((r) => r.status === 200 && r.body === 'hot body'));
  assert.equal(replies.filter((r) => String(r.headers['cache-status']).includes('collapsed')).length, 199);
});

test('a response that is not storable releases its waiters at once (no serialisation)', async (t) => {
  const { o, u, store } = await setup(t, { route: { store: 'main', collapse_timeout: '60s' } });
  let sendHead!: () => void;
  const head = new Promise<void>((r) => (sendHead = r));
  let finishFirst!: () => void;
  const firstBody = new Promise<void>((r) => (finishFirst = r));
  o.routes.set('/nc', (_req, res, n) => {
    if (n > 1) {
      res.writeHead(200, { 'cache-control': 'private', 'content-type': 'text/plain' });
      return void res.end(`#${n}`);
    }
    void head.then(() => {
      res.writeHead(200, { 'cache-control': 'private', 'content-type': 'text/plain' });
      res.write('first, ');
      void firstBody.then(() => res.end('done'));
    });
  });
  const key = `http://127.0.0.1:${u.port}/nc`;
  const first = get(u, '/nc');
  await waitFor(() => o.count('/nc') === 1, 10_000, 'the first request upstream');
  const others = Array.from({ length: 5 }, () => get(u, '/nc'));
  await waitFor(() => (store.fill(key)?.waiters.length ?? 0) === 5, 10_000, 'five waiters');
  // The first response's head says private: the five go upstream while its body is still open.
  sendHead();
  await waitFor(() => o.count('/nc') === 6, 20_000, 'the other requests upstream');
  finishFirst();
  assert.equal((await first).body, 'first, done');
  for (const r of await Promise.all(others)) assert.match(r.body, /^#\d$/);
  // The key now passes: a new request goes upstream without leading a fill.
  const again = get(u, '/nc');
  assert.equal(store.fill(key), undefined);
  assert.match((await again).body, /^#7$/);
});

test('streaming while storing: the first byte does not wait for the last; max_object_size; a cut body is not stored', async (t) => {
  const { o, u, store } = await setup(t, { store: { max_object_size: '4kb' } });
  let finish!: () => void;
  const gate = new Promise<void>((r) => (finish = r));
  o.routes.set('/stream', (_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
    res.write('part one;');
    if (n === 1) void gate.then(() => res.end('part two'));
    else res.end('part two');
  });
  const got = await new Promise<string>((resolve, reject) => {
    void import('node:http').then(({ get: hget }) => {
      hget(`${u.url}/stream`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
          if (body === 'part one;') finish(); // the first chunk came before the origin ended
        });
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
  });
  assert.equal(got, 'part one;part two');
  assert.equal((await get(u, '/stream')).body, 'part one;part two');
  assert.equal(o.count('/stream'), 1);
  // Over max_object_size: by Content-Length, and (chunked) once the copy outgrows it.
  const big = 'x'.repeat(10_000);
  o.routes.set('/big', () => ({ headers: { 'cache-control': 'max-age=600' }, body: big }));
  o.routes.set('/big-chunked', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.write(big.slice(0, 3000));
    res.end(big.slice(3000));
  });
  for (const p of ['/big', '/big-chunked']) {
    const a = await get(u, p);
    const b = await get(u, p);
    assert.equal(a.body, big);
    assert.equal(b.body, big);
    assert.equal(o.count(p), 2, p);
    assert.match(String(b.headers['cache-status']), /detail="too large"|fwd=uri-miss/);
  }
  // The origin cuts the body (Content-Length says more): nothing is stored.
  o.routes.set('/cut', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': '100' });
    res.write('only part');
    setImmediate(() => res.destroy());
  });
  await get(u, '/cut').catch(() => undefined);
  const stored = store.get(`http://127.0.0.1:${u.port}/cut`);
  assert.equal(stored, undefined);
});

test('eviction: the store stays within max_size, least recently used first', async (t) => {
  const { o, u, store } = await setup(t, { store: { max_size: '64kb' } });
  const body = 'y'.repeat(8000);
  for (let i = 0; i < 20; i++) o.routes.set(`/e${i}`, () => ({ headers: { 'cache-control': 'max-age=600' }, body }));
  for (let i = 0; i < 20; i++) {
    await get(u, `/e${i}`);
    assert.ok(store.bytes <= 64 * 1024, `after ${i}: ${store.bytes}`);
    if (i === 2) await get(u, '/e0'); // used again: e1 becomes the oldest
  }
  assert.ok(store.stats.evictions > 0);
  await get(u, '/e19');
  assert.equal(o.count('/e19'), 1, 'the newest is still stored');
  await get(u, '/e1');
  assert.equal(o.count('/e1'), 2, 'an old one was evicted');
});

test('the key: host is part of it; configured headers and cookies; ignored query parameters', async (t) => {
  const { o, u } = await setup(t, { route: { store: 'main', key: { headers: ['x-tenant'], cookies: ['lang'], ignore_query: ['utm_source'] } } });
  o.routes.set('/k', (req) => ({ headers: { 'cache-control': 'max-age=600' }, body: `${String(req.headers.host)} ${req.url!}` }));
  const steps: [string, Record<string, string>, boolean][] = [
    ['/k?a=1', {}, false],
    ['/k?a=1&utm_source=x', {}, true],
    ['/k?a=1', { host: 'other.example' }, false],
    ['/k?a=1', { 'x-tenant': 't1' }, false],
    ['/k?a=1', { 'x-tenant': 't1' }, true],
    ['/k?a=1', { cookie: 'lang=fr' }, false],
    ['/k?a=1', { cookie: 'x=1; lang=fr' }, true],
  ];
  for (const [path, headers, hit] of steps) {
    const r = await get(u, path, headers);
    assert.equal(String(r.headers['cache-status']).includes('hit'), hit, `${path} ${JSON.stringify(headers)}`);
  }
});

test('config: an unknown cache name is an error with a hint; cache on a respond route is refused', () => {
  const r = loadConfigObject(
    { listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['http://127.0.0.1:1'] } }, caches: { main: {} }, routes: [{ upstream: 'app', cache: 'mian' }] },
    '<test>',
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.match(r.errors[0]!.message, /no cache named "mian"/);
  assert.match(String(r.errors[0]!.hint), /main/);
  const r2 = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], caches: { main: {} }, routes: [{ respond: { status: 200 }, cache: 'main' }] }, '<test>');
  assert.equal(r2.ok, false);
  const r3 = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['http://127.0.0.1:1'] } }, caches: { main: { max_size: '1mb' } }, routes: [{ upstream: 'app', cache: false }] }, '<test>');
  assert.equal(r3.ok, true);
  if (r3.ok) assert.equal(r3.config.routes[0]!.cache, undefined);
});

test('HTTP/2 downstream: a hit, HEAD and a 304 from the store', async (t) => {
  const { o, u } = await setup(t, { extra: {}, listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  o.routes.set('/h2', () => ({ headers: { 'cache-control': 'max-age=600', etag: '"h"' }, body: 'over h2' }));
  const s = await h2session(u.url);
  t.after(() => void s.close());
  const a = await h2request(s, { ':path': '/h2' });
  const b = await h2request(s, { ':path': '/h2' });
  assert.equal(a.body.toString(), 'over h2');
  assert.equal(b.body.toString(), 'over h2');
  assert.match(String(b.headers['cache-status']), /hit/);
  const head = await h2request(s, { ':path': '/h2', ':method': 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  const nm = await h2request(s, { ':path': '/h2', 'if-none-match': '"h"' });
  assert.equal(nm.status, 304);
  assert.equal(nm.body.length, 0);
  assert.equal(o.count('/h2'), 1);
});

test('Range from a stored whole response (RFC 9110 §14): 206, 416, several ranges and If-Range give the whole', async (t) => {
  const { o, u } = await setup(t);
  o.routes.set('/r', () => ({ headers: { 'cache-control': 'max-age=600', etag: '"r1"' }, body: '0123456789' }));
  await get(u, '/r');
  const cases: [string, Record<string, string>, number, string, string | undefined][] = [
    ['a range', { range: 'bytes=2-4' }, 206, '234', 'bytes 2-4/10'],
    ['open-ended', { range: 'bytes=7-' }, 206, '789', 'bytes 7-9/10'],
    ['a suffix', { range: 'bytes=-3' }, 206, '789', 'bytes 7-9/10'],
    ['past the end is clipped', { range: 'bytes=8-100' }, 206, '89', 'bytes 8-9/10'],
    ['unsatisfiable', { range: 'bytes=20-' }, 416, '', 'bytes */10'],
    ['several ranges: the whole', { range: 'bytes=0-1,3-4' }, 200, '0123456789', undefined],
    ['another unit: the whole', { range: 'items=0-1' }, 200, '0123456789', undefined],
    ['If-Range matching', { range: 'bytes=0-0', 'if-range': '"r1"' }, 206, '0', 'bytes 0-0/10'],
    ['If-Range not matching', { range: 'bytes=0-0', 'if-range': '"r0"' }, 200, '0123456789', undefined],
    ['If-Range weak never matches', { range: 'bytes=0-0', 'if-range': 'W/"r1"' }, 200, '0123456789', undefined],
  ];
  for (const [name, headers, status, body, contentRange] of cases) {
    const r = await get(u, '/r', headers);
    assert.equal(r.status, status, name);
    assert.equal(r.body, body, name);
    assert.equal(r.headers['content-range'], contentRange, name);
    if (status === 206) assert.equal(r.headers['content-length'], String(body.length), name);
  }
  assert.equal(o.count('/r'), 1);
});

test('stale-while-revalidate (RFC 5861 §3): the stale response answers at once; one background revalidation per variant updates the store', async (t) => {
  const { o, u } = await setup(t, { route: { store: 'main', collapse_timeout: '60s' } });
  const cache = u.usher.runtime.routes[0]!.filters.find((f) => f.name === 'cache') as Cache;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  o.routes.set('/swr', (_req, res, n) => {
    const answer = () => {
      res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=1000', age: '20', 'content-type': 'text/plain' });
      res.end(`swr #${n}`);
    };
    if (n === 2) void gate.then(answer);
    else answer();
  });
  await get(u, '/swr'); // stored stale on arrival (Age 20 > max-age 10)
  // No client waits: every request in the window gets the stale response, and one background fetch goes upstream.
  for (let i = 0; i < 5; i++) {
    const served = await get(u, '/swr');
    assert.equal(served.body, 'swr #1');
    assert.match(String(served.headers['cache-status']), /hit; ttl=-\d+; detail="stale-while-revalidate"/);
  }
  await waitFor(() => o.count('/swr') === 2, 10_000, 'the background revalidation upstream');
  assert.equal(cache.revalidator.stats.started, 1, 'one background revalidation for the variant');
  release();
  await waitFor(() => cache.revalidator.stats.replaced === 1, 10_000, 'the background answer stored');
  assert.equal((await get(u, '/swr')).body, 'swr #2', 'the store has the new response');
  // The background request was the route's: usher's forwarding fields on it.
  const bg = o.up.requests.filter((r) => r.url === '/swr')[1]!;
  assert.ok(bg.headers['x-forwarded-for'] !== undefined);
});

test('stale-while-revalidate: a background 304 refreshes the stored response; a background error leaves the stale one', async (t) => {
  const { o, u } = await setup(t);
  const cache = u.usher.runtime.routes[0]!.filters.find((f) => f.name === 'cache') as Cache;
  let mode: 'etag' | '304' | '503' = 'etag';
  o.routes.set('/v', (req): Answer => {
    if (mode === '304' && req.headers['if-none-match'] === '"v1"') return { status: 304, headers: { etag: '"v1"', 'cache-control': 'max-age=600' } };
    if (mode === '503') return { status: 503, body: 'down' };
    return { headers: { etag: '"v1"', 'cache-control': 'max-age=1, stale-while-revalidate=1000', age: '5' }, body: 'v1 body' };
  });
  await get(u, '/v');
  mode = '304';
  const stale = await get(u, '/v');
  assert.equal(stale.body, 'v1 body');
  assert.match(String(stale.headers['cache-status']), /stale-while-revalidate/);
  await waitFor(() => cache.revalidator.stats.refreshed === 1, 10_000, 'the 304 applied');
  const fresh = await get(u, '/v');
  assert.match(String(fresh.headers['cache-status']), /^usher; hit; ttl=(5\d\d)/, 'fresh again, by the 304\'s max-age');
  assert.equal(fresh.body, 'v1 body');
  assert.equal(o.count('/v'), 2);

  // Stale again (a new fill with Age past max-age), then the background gets a 503: the stale response stays.
  o.routes.set('/e', (): Answer => (mode === '503' ? { status: 503, body: 'down' } : { headers: { 'cache-control': 'max-age=1, stale-while-revalidate=1000', age: '5' }, body: 'e body' }));
  mode = 'etag';
  await get(u, '/e');
  mode = '503';
  assert.equal((await get(u, '/e')).body, 'e body');
  await waitFor(() => cache.revalidator.stats.failed === 1, 10_000, 'the background 503');
  const after = await get(u, '/e');
  assert.equal(after.body, 'e body', 'the stale entry is still there');
  assert.match(String(after.headers['cache-status']), /stale-while-revalidate/);
});

test('collapsing is per variant: a fill for one Vary value does not hold up another', async (t) => {
  const { o, u } = await setup(t, { route: { store: 'main', collapse_timeout: '60s' } });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  o.routes.set('/var', (req, res, n) => {
    const answer = () => {
      res.writeHead(200, { 'cache-control': 'max-age=600', vary: 'x-v', 'content-type': 'text/plain' });
      res.end(`${String(req.headers['x-v'])} #${n}`);
    };
    if (req.headers['x-v'] === 'a' && n > 1) void gate.then(answer);
    else answer();
  });
  await get(u, '/var', { 'x-v': 'z' }); // the key's variants are known from here: they vary on X-V
  const a1 = get(u, '/var', { 'x-v': 'a' });
  await waitFor(() => o.count('/var') === 2, 10_000, 'the fill for a');
  const a2 = get(u, '/var', { 'x-v': 'a' }); // waits on a's fill
  const b = await get(u, '/var', { 'x-v': 'b' }); // does not
  assert.equal(b.body, 'b #3');
  release();
  assert.equal((await a1).body, 'a #2');
  assert.equal((await a2).body, 'a #2', 'the same variant collapsed onto its fill');
  assert.equal(o.count('/var'), 3);
});

test('stale-if-error (RFC 5861 §4): a 5xx or no answer at all is replaced by the stale response within the window', async (t) => {
  const { o, u } = await setup(t, { extra: {} });
  let failing = false;
  const route = (cc: string) => (): Answer => (failing ? { status: 503, body: 'down' } : { headers: { 'cache-control': cc, age: '20' }, body: 'stored copy' });
  o.routes.set('/sie', route('max-age=10, stale-if-error=1000'));
  o.routes.set('/sie-mr', route('max-age=10, stale-if-error=1000, must-revalidate'));
  o.routes.set('/sie-none', route('max-age=10'));
  for (const p of ['/sie', '/sie-mr', '/sie-none']) await get(u, p);
  failing = true;
  const a = await get(u, '/sie');
  assert.equal(a.status, 200);
  assert.equal(a.body, 'stored copy');
  assert.match(String(a.headers['cache-status']), /fwd-status=503; detail="stale-if-error"/);
  assert.equal((await get(u, '/sie-mr')).status, 503, 'must-revalidate: never stale');
  assert.equal((await get(u, '/sie-none')).status, 503, 'no stale-if-error');
  assert.equal((await get(u, '/sie-none', { 'cache-control': 'stale-if-error=1000' })).body, 'stored copy', "the request's own stale-if-error");
  // The upstream gone altogether: connection refused.
  await o.up.close();
  const b = await get(u, '/sie');
  assert.equal(b.status, 200);
  assert.equal(b.body, 'stored copy');
  assert.match(String(b.headers['cache-status']), /detail="stale-if-error; upstream_connect_refused"/);
  assert.equal((await get(u, '/sie-none')).status, 502);
});

test('stale_if_error on the route: the operator\'s override while the upstream is down', async (t) => {
  const { o, u } = await setup(t, { route: { store: 'main', stale_if_error: '1h' } });
  o.routes.set('/op', () => ({ headers: { 'cache-control': 'max-age=10', age: '20' }, body: 'kept' }));
  // The override is no permission from the origin: no-cache (never used unvalidated) and s-maxage
  // (proxy-revalidate's semantics) are not served stale by it.
  o.routes.set('/op-no-cache', () => ({ headers: { 'cache-control': 'no-cache, max-age=10', age: '20', etag: '"a"' }, body: 'not kept' }));
  o.routes.set('/op-s-maxage', () => ({ headers: { 'cache-control': 's-maxage=10', age: '20' }, body: 'not kept' }));
  for (const p of ['/op', '/op-no-cache', '/op-s-maxage']) await get(u, p);
  await o.up.close();
  const r = await get(u, '/op');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'kept');
  for (const p of ['/op-no-cache', '/op-s-maxage']) {
    const e = await get(u, p);
    assert.equal(e.status, 502, p);
    assert.notEqual(e.body, 'not kept', p);
  }
});
