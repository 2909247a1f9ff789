// Instructions per call of usher's detectSqli / detectXss (src/waf/detect) on typical benign
// values, counted by valgrind's callgrind: a figure the machine's load does not move (wall-clock
// micro benches on the shared 2-core machine vary several-fold). Each detector runs twice under
// callgrind, with N and 3N calls; the difference divided by 2N leaves out start-up and JIT.
// Run `npm run build` first; needs valgrind.
//
//   node bench/waf/detect-instructions.js [--calls 100000]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '100000' }, child: { type: 'string' } } });
// The values bench/micro/waf-detect.js times: an id, a language tag, a name with an apostrophe,
// a search, an email, a URL with a query, a date, a sentence, JSON, base64.
const BENIGN = [
  '42', 'en-GB', "O'Brien", 'red shoes under $50', 'john.doe@example.com', 'https://example.com/a?b=c&d=e', '2024-01-31',
  'Please select a size or colour and click next', '{"id":1,"name":"x"}', 'dGhpcyBpcyBiYXNlNjQ=',
];

if (values.child !== undefined) {
  const { detectSqli, detectXss } = await import('../../dist/src/waf/detect/index.js');
  const fn = values.child === 'xss' ? detectXss : detectSqli;
  const n = Number(values.calls);
  let hits = 0;
  for (let i = 0; i < n; i++) if (fn(BENIGN[i % BENIGN.length])) hits++;
  if (hits !== 0) throw new Error(`${values.child}: ${hits} benign values flagged`);
} else {
  const self = fileURLToPath(import.meta.url);
  const count = (name, calls) => {
    const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, self, '--child', name, '--calls', String(calls)], { encoding: 'utf8' });
    const m = /Collected : (\d+)/.exec(r.stderr ?? '');
    if (r.status !== 0 || m === null) throw new Error(`valgrind failed (${r.error?.message ?? r.status}): ${(r.stderr ?? '').slice(-500)}`);
    return Number(m[1]);
  };
  const n = Number(values.calls);
  for (const name of ['sqli', 'xss']) {
    const per = (count(name, 3 * n) - count(name, n)) / (2 * n);
    console.log(`detect${name === 'sqli' ? 'Sqli' : 'Xss'}: ${Math.round(per)} instructions per call (mean over ${BENIGN.length} benign values)`);
  }
}
