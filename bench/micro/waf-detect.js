// usher's @detectSQLi / @detectXSS (src/waf/detect, issue #14): under the CRS they run on every
// argument of every request, so the figure that matters is ns per call on ordinary values (and
// that a call allocates little: see `report`). From the compiled tree (run `npm run build` first).
import { detectSqli, detectXss } from '../../dist/src/waf/detect/index.js';

// Typical benign argument values: ids, words, a name with an apostrophe, a search, an email, a
// URL, a date, a sentence with "or"/"and", a JSON snippet.
const BENIGN = [
  '42', 'en-GB', "O'Brien", 'red shoes under $50', 'john.doe@example.com', 'https://example.com/a?b=c&d=e', '2024-01-31',
  'Please select a size or colour and click next', '{"id":1,"name":"x"}', 'dGhpcyBpcyBiYXNlNjQ=',
];
const ATTACK_SQLI = "1' or '1'='1' -- ";
const ATTACK_XSS = '"><img src=x onerror=alert(1)>';

export const cases = [
  { name: 'waf-detect: detectSqli, 10 benign values (per value)', fn: (i) => detectSqli(BENIGN[i % 10]), iterations: 1_000_000 },
  { name: 'waf-detect: detectXss, 10 benign values (per value)', fn: (i) => detectXss(BENIGN[i % 10]), iterations: 2_000_000 },
  { name: 'waf-detect: detectSqli, a tautology', fn: () => detectSqli(ATTACK_SQLI), iterations: 500_000 },
  { name: 'waf-detect: detectXss, an attribute break', fn: () => detectXss(ATTACK_XSS), iterations: 500_000 },
  { name: 'waf-detect: detectSqli, 1 KiB of words', fn: () => detectSqli(LONG), iterations: 100_000 },
];
const LONG = 'the quick brown fox jumps over the lazy dog '.repeat(24);

/** Bytes allocated per call on the benign values (heap growth over many calls, GC off-path). */
export async function report() {
  const lines = [];
  const results = [];
  for (const [name, fn] of [['detectSqli', detectSqli], ['detectXss', detectXss]]) {
    for (let i = 0; i < 100_000; i++) fn(BENIGN[i % 10]);
    const calls = 200_000;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < calls; i++) fn(BENIGN[i % 10]);
    const bytes = Math.max(0, (process.memoryUsage().heapUsed - before) / calls);
    lines.push(`waf-detect: ${name} allocates about ${bytes.toFixed(1)} B per benign value (heap growth; a GC in between lowers it)`);
    results.push({ name: `waf-detect: ${name} bytes per benign value`, bytesPerOp: bytes });
  }
  return { lines, results };
}
