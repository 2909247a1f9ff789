// RFC 9213 targeted fields: which values parse as a Dictionary Structured Field, and the
// Cache-Control syntax they become (src/cache/targeted.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetedControl } from '../../src/cache/targeted.js';

test('targeted fields: valid dictionaries become Cache-Control syntax, anything else is ignored', () => {
  const cases: [string, string | undefined][] = [
    ['max-age=600', 'max-age=600'],
    ['  max-age=600 ,  must-revalidate  ', 'max-age=600, must-revalidate'],
    ['no-store', 'no-store'],
    ['none', 'none'],
    ['private="set-cookie"', 'private="set-cookie"'],
    ['max-age=60;foo=bar, stale-while-revalidate=30', 'max-age=60, stale-while-revalidate=30'],
    ['no-cache=?1, public=?0', 'no-cache'],
    ['max-age=1.5', 'max-age=1.5'],
    ['max-age="10000", s-maxage="5"', 'max-age=invalid, s-maxage=invalid'],
    ['x-ext=tok/en', 'x-ext=tok/en'],
    ['', undefined],
    ['   ', undefined],
    ['Max-Age=60', undefined],
    ['max-age=60,', undefined],
    ['max-age=', undefined],
    ['max-age=60 s-maxage=5', undefined],
    ['no-cache=(a b)', undefined],
    ['private="unterminated', undefined],
    ['public=?0', undefined],
  ];
  for (const [value, expected] of cases) assert.equal(targetedControl(value), expected, JSON.stringify(value));
});
