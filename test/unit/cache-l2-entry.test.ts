// The L2's entry encoding (src/cache/l2-entry.ts): a stored response survives the round trip
// with everything freshness, Age, Vary selection, revalidation and purging need; what is not an
// entry decodes to nothing (a miss); the TTL covers freshness plus the stale lifetime. Also the
// `caches.NAME.l2` config: defaults, both spellings of the connection, errors with their paths.
// And a published purge: applied to this memory store unless this instance sent it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_DIRECTIVES } from '../../src/cache/cache-control.js';
import { decodeEntry, encodeEntry, l2Ttl } from '../../src/cache/l2-entry.js';
import { L2 } from '../../src/cache/l2.js';
import { MemoryStore, sizeOf, type StoredResponse } from '../../src/cache/store.js';
import { loadConfigText, formatIssues } from '../../src/config/index.js';
import { brief } from '../helpers/issues.js';

function response(over: Partial<StoredResponse> = {}): StoredResponse {
  const body = Buffer.from('hello, world\n\u00e9\u0000\u00ff', 'latin1');
  const r: StoredResponse = {
    status: 200,
    headers: ['Content-Type', 'text/plain', 'ETag', '"abc"', 'Last-Modified', 'Mon, 01 Jan 2024 00:00:00 GMT', 'X-Multi', 'a', 'X-Multi', 'b'],
    body,
    length: body.length,
    file: undefined,
    varyNames: ['accept-encoding', 'accept-language'],
    varyValues: ['gzip', undefined],
    secondary: 'h:x-tenant:blue',
    responseTime: 1_700_000_000.25,
    initialAge: 3,
    lifetime: 60,
    directives: { ...NO_DIRECTIVES, maxAge: 60, sMaxage: Number.NaN, public: true, staleWhileRevalidate: 30 },
    control: 'max-age=60, public, stale-while-revalidate=30',
    targeted: false,
    tags: ['product-1', 'home'],
    etag: '"abc"',
    upstreamEtag: '"abc-up"',
    lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT',
    date: 'Tue, 14 Nov 2023 22:13:20 GMT',
    size: 0,
    ...over,
  };
  r.size = sizeOf(r);
  return r;
}

test('an entry round-trips: status, fields in order, body bytes, Vary values, key parts, times, directives (NaN too), validators, tags', () => {
  const r = response();
  const back = decodeEntry(encodeEntry(r));
  assert.ok(back !== undefined);
  assert.equal(back.status, 200);
  assert.deepEqual(back.headers, r.headers);
  assert.ok(back.body.equals(r.body));
  assert.equal(back.length, r.body.length);
  assert.equal(back.file, undefined);
  assert.deepEqual(back.varyNames, r.varyNames);
  assert.deepEqual(back.varyValues, ['gzip', undefined]);
  assert.equal(back.secondary, r.secondary);
  assert.equal(back.responseTime, r.responseTime);
  assert.equal(back.initialAge, 3);
  assert.equal(back.lifetime, 60);
  assert.equal(back.directives.maxAge, 60);
  assert.ok(Number.isNaN(back.directives.sMaxage));
  assert.equal(back.directives.public, true);
  assert.equal(back.directives.noCache, false);
  assert.equal(back.directives.staleWhileRevalidate, 30);
  assert.equal(back.directives.staleIfError, undefined);
  assert.equal(back.control, r.control);
  assert.equal(back.targeted, false);
  assert.deepEqual(back.tags, ['product-1', 'home']);
  assert.equal(back.etag, '"abc"');
  assert.equal(back.upstreamEtag, '"abc-up"');
  assert.equal(back.lastModified, r.lastModified);
  assert.equal(back.date, r.date);
  assert.equal(back.size, r.size);
  assert.equal(back.wire, undefined);
  assert.equal(back.hitHead, undefined);
});

test('absent optional parts stay absent; an empty body and a 301 round-trip', () => {
  const r = response({ status: 301, body: Buffer.alloc(0), length: 0, varyNames: [], varyValues: [], secondary: '', etag: undefined, upstreamEtag: undefined, lastModified: undefined, date: undefined, control: undefined, tags: [], directives: NO_DIRECTIVES });
  const back = decodeEntry(encodeEntry(r))!;
  assert.equal(back.status, 301);
  assert.equal(back.body.length, 0);
  for (const k of ['etag', 'upstreamEtag', 'lastModified', 'date', 'control'] as const) assert.equal(back[k], undefined, k);
  assert.deepEqual(back.directives, { ...NO_DIRECTIVES });
});

test('what is not an entry decodes to undefined (a miss), never throws', () => {
  const good = encodeEntry(response());
  assert.equal(decodeEntry(Buffer.alloc(0)), undefined);
  assert.equal(decodeEntry(Buffer.from('hello')), undefined);
  const other = Buffer.from(good);
  other[2] = 2; // another version
  assert.equal(decodeEntry(other), undefined);
  assert.equal(decodeEntry(good.subarray(0, 20)), undefined, 'cut inside the metadata');
  const bad = Buffer.concat([good.subarray(0, 3), Buffer.from([0, 0, 0, 2]), Buffer.from('{}')]);
  assert.equal(decodeEntry(bad), undefined, 'metadata without the fields');
  const junk = Buffer.concat([good.subarray(0, 3), Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
  assert.equal(decodeEntry(junk), undefined, 'metadata that is not JSON');
  // A body cut short is still an entry of that (shorter) body: the value is written whole by one SET, so this cannot happen short of another writer.
  assert.ok(decodeEntry(good) !== undefined);
});

test('the TTL: what is left of freshness plus the longest stale window; with a validator, as long again; 0 when nothing is left', () => {
  const t0 = 1_700_000_000;
  const plain = response({ responseTime: t0, initialAge: 0, lifetime: 60, upstreamEtag: undefined, lastModified: undefined, directives: { ...NO_DIRECTIVES, maxAge: 60 } });
  assert.equal(l2Ttl(plain, t0, 0), 60);
  assert.equal(l2Ttl(plain, t0 + 10, 0), 50);
  assert.equal(l2Ttl(plain, t0 + 10, 100), 150, "the route's stale_if_error");
  assert.equal(l2Ttl(plain, t0 + 60, 0), 0);
  const swr = response({ responseTime: t0, initialAge: 5, lifetime: 60, upstreamEtag: undefined, lastModified: undefined, directives: { ...NO_DIRECTIVES, maxAge: 60, staleWhileRevalidate: 30, staleIfError: 20 } });
  assert.equal(l2Ttl(swr, t0, 0), 85);
  const validated = response({ responseTime: t0, initialAge: 0, lifetime: 60, directives: { ...NO_DIRECTIVES, maxAge: 60 } });
  assert.equal(l2Ttl(validated, t0, 0), 120);
  assert.equal(l2Ttl(response({ lifetime: 0, directives: NO_DIRECTIVES, upstreamEtag: undefined, lastModified: undefined }), 1_700_000_000.25, 0), 0);
});

const L = 'listeners: [{ address: 8080 }]\nupstreams: { app: { servers: [http://127.0.0.1:1] } }\nroutes: [{ upstream: app, cache: c }]\n';

test('config: l2 defaults, a URL or a connection section', () => {
  const r = loadConfigText(`${L}caches:\n  c: { l2: { redis: "redis://127.0.0.1:6390" } }\n`, 'usher.yaml', {});
  assert.equal(r.ok, true, r.ok ? '' : formatIssues(r.errors));
  if (!r.ok) return;
  const l2 = r.config.caches!.c!.l2!;
  assert.equal(l2.url, 'redis://127.0.0.1:6390');
  assert.equal(l2.prefix, 'usher:cache:');
  assert.equal(l2.max_object_size, 64 * 1024);
  assert.equal(l2.timeout, 50);
  const s = loadConfigText(`${L}caches:\n  c: { l2: { redis: { sentinel: { name: m, nodes: ["127.0.0.1:26379"] } }, prefix: "p:", max_object_size: 1kb, timeout: 20ms } }\n`, 'usher.yaml', {});
  assert.equal(s.ok, true, s.ok ? '' : formatIssues(s.errors));
  if (!s.ok) return;
  const l = s.config.caches!.c!.l2!;
  assert.deepEqual(l.sentinel, { name: 'm', nodes: [{ host: '127.0.0.1', port: 26379 }] });
  assert.equal(l.prefix, 'p:');
  assert.equal(l.max_object_size, 1024);
  assert.equal(l.timeout, 20);
  const none = loadConfigText(`${L}caches:\n  c: {}\n`, 'usher.yaml', {});
  assert.ok(none.ok && none.config.caches!.c!.l2 === undefined);
});

test('config: l2 errors name the file, line and path', () => {
  const errs = (text: string) => {
    const r = loadConfigText(`${L}caches:\n${text}`, 'usher.yaml', {});
    assert.equal(r.ok, false);
    return r.ok ? [] : brief(r.errors);
  };
  const disk = errs('  c: { type: disk, path: /tmp/x, l2: { redis: "redis://h:1" } }\n');
  assert.equal(disk.length, 1);
  assert.equal(disk[0]![0], 5);
  assert.equal(disk[0]![2], 'caches.c.l2');
  assert.match(disk[0]![3], /a shared L2 goes with a memory store/);
  const url = errs('  c: { l2: { redis: "http://h:1" } }\n');
  assert.equal(url[0]![2], 'caches.c.l2.redis');
  assert.match(url[0]![3], /is not a Redis URL/);
  const missing = errs('  c: { l2: { prefix: x } }\n');
  assert.equal(missing[0]![2], 'caches.c.l2');
  assert.match(missing[0]![3], /redis/);
  const both = errs('  c: { l2: { redis: { url: "redis://h:1", cluster: ["h:2"] } } }\n');
  assert.equal(both[0]![2], 'caches.c.l2.redis');
  assert.match(both[0]![3], /one of "url", "sentinel" or "cluster"/);
  const timeout = errs('  c: { l2: { redis: "redis://h:1", timeout: soon } }\n');
  assert.equal(timeout[0]![2], 'caches.c.l2.timeout');
});

test('a published purge or invalidation is applied to the memory store, except one this instance sent; junk is ignored', () => {
  const store = new MemoryStore('main', 1 << 20, 1 << 20);
  const l2 = new L2(store, { prefix: 'usher:cache:', max_object_size: 65536, timeout: 50, options: {}, cluster_options: {} });
  assert.equal(l2.channel, 'usher:cache:main:purge');
  assert.equal(l2.started, false, 'built pure: no connection');
  const apply = (m: unknown) => (l2 as unknown as { apply(message: string): void }).apply(typeof m === 'string' ? m : JSON.stringify(m));
  const fill = () => {
    for (const k of ['http://a.test/x', 'http://a.test/y', 'http://b.test/z']) store.put(k, response({ tags: k.endsWith('y') ? ['t1'] : [] }), 4);
  };
  fill();
  apply({ from: l2.id, purge: { url: 'http://a.test/x' } });
  assert.ok(store.get('http://a.test/x') !== undefined, 'its own message: already applied when it was sent');
  apply({ from: 'other', purge: { url: 'http://a.test/x' } });
  assert.equal(store.get('http://a.test/x'), undefined);
  apply({ from: 'other', purge: { tag: 't1' } });
  assert.equal(store.get('http://a.test/y'), undefined);
  assert.ok(store.get('http://b.test/z') !== undefined);
  fill();
  apply({ from: 'other', purge: { prefix: 'http://a.test/' } });
  assert.deepEqual([...store.entries()].map(([k]) => k), ['http://b.test/z']);
  apply({ from: 'other', keys: ['http://b.test/z'] });
  assert.equal(store.keys, 0);
  fill();
  for (const junk of ['not json', 'null', '[]', { from: 'other' }, { from: 'other', purge: { url: 'http://a.test/x', tag: 't1' } }, { from: 'other', purge: { url: 1 } }, { from: 'other', purge: null }]) apply(junk);
  assert.equal(store.keys, 3, 'nothing purged by malformed messages');
});
