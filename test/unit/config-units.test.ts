import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSize } from '../../src/config/index.js';

test('parseDuration accepts numbers (ms) and unit strings', () => {
  const good: [string | number, number][] = [
    [0, 0],
    [250, 250],
    ['250ms', 250],
    ['5s', 5000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    ['0.5ms', 1], // rounded to whole milliseconds
    [' 5s ', 5000],
    ['0s', 0],
    [2_147_483_647, 2_147_483_647],
  ];
  for (const [input, ms] of good) assert.equal(parseDuration(input), ms, `parseDuration(${JSON.stringify(input)})`);
});

test('parseDuration rejects bad input with what was expected and what was found', () => {
  const bad: [string | number, RegExp][] = [
    ['5 parsecs', /: expected a duration like "5s" or "250ms", got "5 parsecs" \(units: ms, s, m, h/],
    ['60', /got "60" \(a duration string needs a unit: write "60s" for seconds, or 60 without quotes for milliseconds\)/],
    ['5S', /got "5S" \(units are lower case/],
    ['', /got ""/],
    ['s', /got "s"/],
    ['-5s', /got "-5s"/],
    ['5s5', /got "5s5"/],
    ['1d', /got "1d"/],
    [-1, /or a whole number of milliseconds, got -1$/],
    [1.5, /got 1\.5$/],
    [Number.NaN, /got NaN$/],
    [2_147_483_648, /at most 2147483647ms .* got 2147483648$/],
    ['600h', /at most 2147483647ms .* got "600h"$/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => parseDuration(input), message, `parseDuration(${JSON.stringify(input)})`);
  }
});

test('parseSize accepts numbers (bytes) and unit strings, k = 1024 as in nginx', () => {
  const good: [string | number, number][] = [
    [0, 0],
    [512, 512],
    ['512', 512],
    ['512b', 512],
    ['10kb', 10 * 1024],
    ['10KB', 10 * 1024],
    ['10k', 10 * 1024],
    ['10kib', 10 * 1024],
    ['10mb', 10 * 1024 ** 2],
    ['10 MiB', 10 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1gb', 1024 ** 3],
    ['1.5kb', 1536],
  ];
  for (const [input, bytes] of good) assert.equal(parseSize(input), bytes, `parseSize(${JSON.stringify(input)})`);
});

test('parseSize rejects bad input with what was expected and what was found', () => {
  const bad: [string | number, RegExp][] = [
    ['10 parsecs', /: expected a size like "16kb" or "10mb", got "10 parsecs" \(units: b, kb, mb, gb/],
    ['12tb', /got "12tb"/],
    ['kb', /got "kb"/],
    ['', /got ""/],
    ['-1kb', /got "-1kb"/],
    [-1, /or a whole number of bytes, got -1$/],
    [0.5, /got 0\.5$/],
    ['99999999gb', /at most 9007199254740991 bytes, got "99999999gb"$/],
  ];
  for (const [input, message] of bad) assert.throws(() => parseSize(input), message, `parseSize(${JSON.stringify(input)})`);
});
