// The cache's pure rules, table by table: Cache-Control parsing (RFC 9111 §5.2), storability
// (§3), freshness lifetime (§4.2.1, §4.2.2), Age (§4.2.3), Vary normalisation (§4.1), client
// conditionals (RFC 9110 §13.1), and the byte-bounded LRU.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCacheControl, NO_DIRECTIVES } from '../../src/cache/cache-control.js';
import { notModified } from '../../src/cache/conditional.js';
import { ageValue, freshnessLifetime, httpDate, initialAge, notStorable, type StoreFacts } from '../../src/cache/freshness.js';
import { ByteLru } from '../../src/cache/lru.js';
import type { StoredResponse } from '../../src/cache/store.js';
import { normaliseAcceptEncoding, normaliseField } from '../../src/cache/vary.js';

test('Cache-Control parsing: tokens, quoted arguments, duplicates, invalid values', () => {
  const cc = parseCacheControl('Public, MAX-AGE=60, s-maxage="120", private="set-cookie, x-a", no-cache, must-understand');
  assert.equal(cc.public, true);
  assert.equal(cc.maxAge, 60);
  assert.equal(cc.sMaxage, 120);
  assert.equal(cc.private, true);
  assert.equal(cc.noCache, true);
  assert.equal(cc.mustUnderstand, true);
  assert.ok(Number.isNaN(parseCacheControl('max-age=60, max-age=0').maxAge));
  assert.equal(parseCacheControl('max-age=60, max-age=60').maxAge, 60);
  assert.ok(Number.isNaN(parseCacheControl('max-age=abc').maxAge));
  assert.ok(Number.isNaN(parseCacheControl('max-age').maxAge));
  assert.equal(parseCacheControl('max-age=99999999999').maxAge, 2147483648);
  assert.equal(parseCacheControl('max-stale').maxStale, Infinity);
  assert.equal(parseCacheControl('max-stale=5, min-fresh=3, only-if-cached').minFresh, 3);
  assert.equal(parseCacheControl('stale-while-revalidate=30, stale-if-error=60').staleIfError, 60);
  assert.equal(parseCacheControl(undefined), NO_DIRECTIVES);
  assert.equal(parseCacheControl('x-ext=1, , foo').maxAge, undefined);
});

test('storability (§3)', () => {
  const base: StoreFacts = { method: 'GET', status: 200, response: NO_DIRECTIVES, request: NO_DIRECTIVES, authorization: false, hasExpires: false, varyStar: false };
  const cc = parseCacheControl;
  const table: [string, Partial<StoreFacts>, string | undefined][] = [
    ['plain 200 (heuristic)', {}, undefined],
    ['POST', { method: 'POST', response: cc('max-age=60') }, 'method'],
    ['HEAD', { method: 'HEAD', response: cc('max-age=60') }, 'method'],
    ['no-store', { response: cc('no-store') }, 'no-store'],
    ['must-understand + no-store, known status', { response: cc('must-understand, no-store, max-age=5') }, undefined],
    ['must-understand, unknown status', { status: 299, response: cc('must-understand, max-age=5') }, 'status not understood (must-understand)'],
    ['unknown status with max-age (§3: any final status)', { status: 299, response: cc('max-age=5') }, undefined],
    ['unknown status without freshness', { status: 599, response: cc('') }, 'no explicit freshness and status not cacheable by default'],
    ['private', { response: cc('private, max-age=5') }, 'private'],
    ['request no-store', { request: cc('no-store') }, 'request no-store'],
    ['Authorization', { authorization: true, response: cc('max-age=5') }, 'authorization'],
    ['Authorization + public', { authorization: true, response: cc('public') }, undefined],
    ['Authorization + s-maxage', { authorization: true, response: cc('s-maxage=5') }, undefined],
    ['Authorization + must-revalidate', { authorization: true, response: cc('must-revalidate') }, undefined],
    ['Vary *', { varyStar: true }, 'vary *'],
    ['302 without freshness', { status: 302 }, 'no explicit freshness and status not cacheable by default'],
    ['302 with Expires', { status: 302, hasExpires: true }, undefined],
    ['307 with max-age', { status: 307, response: cc('max-age=5') }, undefined],
    ['206', { status: 206, response: cc('max-age=5') }, 'status'],
    ['304', { status: 304, response: cc('max-age=5') }, 'status'],
    ['404', { status: 404 }, undefined],
    ['503 public', { status: 503, response: cc('public') }, undefined],
  ];
  for (const [name, facts, expected] of table) assert.equal(notStorable({ ...base, ...facts }), expected, name);
});

test('freshness lifetime (§4.2.1, §4.2.2)', () => {
  const cc = parseCacheControl;
  const now = 1_700_000_000;
  const base = { status: 200, response: NO_DIRECTIVES, date: now, expires: undefined as number | undefined, lastModified: NaN, heuristicFraction: 0.1, heuristicMax: 86400 };
  const table: [string, Partial<typeof base>, number][] = [
    ['s-maxage over max-age', { response: cc('max-age=10, s-maxage=20') }, 20],
    ['max-age over Expires', { response: cc('max-age=10'), expires: now + 100 }, 10],
    ['Expires - Date', { expires: now + 100 }, 100],
    ['Expires without Date: from the response time', { expires: now + 50, date: NaN }, 50],
    ['Expires in the past', { expires: now - 100 }, 0],
    ['invalid Expires', { expires: NaN }, 0],
    ['invalid max-age', { response: cc('max-age=x') }, 0],
    ['heuristic: 10% since Last-Modified', { lastModified: now - 1000 }, 100],
    ['heuristic bounded', { lastModified: now - 86400 * 100 }, 86400],
    ['no heuristic for 302', { status: 302, lastModified: now - 1000 }, 0],
    ['heuristic for public 302', { status: 302, response: cc('public'), lastModified: now - 1000 }, 100],
    ['nothing', {}, 0],
  ];
  for (const [name, facts, expected] of table) assert.equal(freshnessLifetime({ ...base, ...facts }, now), expected, name);
});

test('Age (§4.2.3): corrected initial age', () => {
  const t = 1_700_000_000;
  const table: [string, Parameters<typeof initialAge>[0], number][] = [
    ['nothing: the response delay', { requestTime: t - 2, responseTime: t, date: t, age: 0 }, 2],
    ['Age plus the delay', { requestTime: t - 1, responseTime: t, date: t, age: 30 }, 31],
    ['an old Date (apparent age)', { requestTime: t, responseTime: t, date: t - 100, age: 10 }, 100],
    ['a Date in the future counts 0', { requestTime: t, responseTime: t, date: t + 100, age: 0 }, 0],
    ['no Date', { requestTime: t, responseTime: t, date: NaN, age: 5 }, 5],
  ];
  for (const [name, facts, expected] of table) assert.equal(initialAge(facts), expected, name);
  assert.equal(httpDate('Sun, 06 Nov 1994 08:49:37 GMT'), 784111777);
  assert.equal(httpDate('Sunday, 06-Nov-94 08:49:37 GMT'), 784111777);
  assert.equal(httpDate('Sun Nov  6 08:49:37 1994'), 784111777); // asctime is GMT too, whatever TZ says
  assert.equal(httpDate('Thu, 18 AUG 2050 02:01:18 gMT'), 2544400878); // names without case
  assert.ok(Number.isNaN(httpDate('not a date')));
  assert.ok(Number.isNaN(httpDate(undefined)));
  // Only the three forms of RFC 9110 §5.6.7: what Date.parse would accept is invalid (Expires: already expired).
  for (const bad of [
    'Thu, 18 Aug 2050 02:01:18 UTC',
    'Thu, 18 Aug 2050 02:01:18 AEST',
    'Thu, 18 Aug 50 02:01:18 GMT',
    'Thu 18 Aug 2050 02:01:18 GMT',
    'Thu, 18  Aug  2050 02:01:18 GMT',
    'Thu, 18-Aug-2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 02.01.18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT, Thu, 18 Aug 2050 2:01:19 GMT',
    'Thu, 31 Feb 2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 24:01:18 GMT',
    '0',
  ]) assert.ok(Number.isNaN(httpDate(bad)), bad);
});

test('Age (RFC 9111 §5.1): a non-negative integer; of a list, the first member', () => {
  const table: [string | undefined, number][] = [
    ['30', 30], [' 30 ', 30], ['7200, 0', 7200], ['0, 7200', 0], ['abc', 0], ['-1', 0], ['1.5', 0], ['7200;foo=bar', 0],
    ['99999999999', 2147483648], [undefined, 0],
  ];
  for (const [value, expected] of table) assert.equal(ageValue(value), expected, String(value));
});

test('Vary normalisation (§4.1): Accept-Encoding as a sorted set of accepted codings', () => {
  const table: [string, string][] = [
    ['gzip, br', 'br,gzip'],
    ['br,gzip', 'br,gzip'],
    ['br;q=0.9, GZIP', 'br,gzip'],
    ['gzip, br;q=0', 'gzip'],
    ['x-gzip', 'gzip'],
    ['', ''],
    ['identity', 'identity'],
  ];
  for (const [input, expected] of table) assert.equal(normaliseAcceptEncoding(input), expected, input);
  assert.equal(normaliseField('accept-language', ' en ,fr'), 'en,fr');
  assert.equal(normaliseField('x-a', undefined), undefined);
});

test('client conditionals against a stored response', () => {
  const r = { status: 200, etag: '"a"', lastModified: 'Sun, 06 Nov 1994 08:49:37 GMT', date: 'Mon, 07 Nov 1994 08:49:37 GMT' } as StoredResponse;
  assert.equal(notModified('"a"', undefined, r), true);
  assert.equal(notModified('W/"a"', undefined, r), true);
  assert.equal(notModified('"b"', 'Mon, 07 Nov 2050 08:49:37 GMT', r), false);
  assert.equal(notModified(undefined, 'Mon, 07 Nov 1994 08:49:37 GMT', r), true);
  assert.equal(notModified(undefined, 'Sat, 05 Nov 1994 08:49:37 GMT', r), false);
  assert.equal(notModified(undefined, 'garbage', r), false);
  assert.equal(notModified('"a"', undefined, { ...r, status: 404 }), false);
  assert.equal(notModified(undefined, 'Mon, 07 Nov 1994 08:49:37 GMT', { ...r, lastModified: undefined }), true);
});

test('ByteLru: bounded in bytes, least recently used out first', () => {
  const evicted: string[] = [];
  const lru = new ByteLru<{ size: number }>(100, (k) => evicted.push(k));
  lru.set('a', { size: 40 });
  lru.set('b', { size: 40 });
  lru.get('a');
  lru.set('c', { size: 40 });
  assert.deepEqual(evicted, ['b']);
  assert.equal(lru.usedBytes, 80);
  assert.equal(lru.set('huge', { size: 101 }), false);
  assert.equal(lru.peek('huge'), undefined);
  lru.set('a', { size: 10 });
  assert.equal(lru.usedBytes, 50);
  assert.equal(lru.delete('c'), true);
  assert.equal(lru.usedBytes, 10);
  assert.equal(lru.size, 1);
});
