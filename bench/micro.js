// usher's micro-benchmarks: every bench/micro/*.js exports `cases` ({ name, fn, iterations }),
// measured here with lib/measure.js (warm-up, then the median ns/op of several runs).
//   npm run bench:micro -- [--filter TEXT] [--runs N] [--json]
// A case file may import usher's compiled code (../../dist/src/...): when that import fails
// (not built yet), the file is reported and skipped, and the other files still run.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { measure } from './lib/measure.js';

const MICRO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'micro');

const { values } = parseArgs({
  options: {
    filter: { type: 'string' },
    runs: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});

const results = [];
const reports = [];
let failures = 0;
for (const file of fs.readdirSync(MICRO_DIR).filter((f) => f.endsWith('.js')).sort()) {
  let cases, report;
  try {
    ({ cases, report } = await import(pathToFileURL(path.join(MICRO_DIR, file)).href));
  } catch (err) {
    failures++;
    console.error(`${file}: cannot load (${err.code ?? err.message}) — if it imports dist/, run npm run build first`);
    continue;
  }
  for (const c of cases ?? []) {
    if (values.filter && !c.name.includes(values.filter)) continue;
    const result = measure(c.name, c.fn, c.iterations, { runs: Number(values.runs) });
    results.push(result);
    if (!values.json) print(result);
  }
  reports.push({ file, report });
}
// Files may also export `async report()` for figures that are not ns/op of a hot function (one
// config load, the request delay during a reload): { lines, results }. They run after every case,
// so their garbage does not disturb the cases' timings; --filter matches the file name.
for (const { file, report } of reports) {
  if (typeof report !== 'function' || (values.filter && !file.includes(values.filter))) continue;
  const out = await report();
  results.push(...out.results);
  if (!values.json) for (const line of out.lines) console.log(line);
}
if (values.json) console.log(JSON.stringify({ node: process.version, date: new Date().toISOString(), results }, null, 2));
process.exitCode = failures ? 1 : 0;

function print({ name, nsPerOp, minNs, maxNs }) {
  const ops = 1e9 / nsPerOp;
  const opsText = ops >= 1e6 ? `${(ops / 1e6).toFixed(1)}M` : `${(ops / 1e3).toFixed(1)}k`;
  console.log(
    `${name.padEnd(46)} ${nsPerOp.toFixed(1).padStart(9)} ns/op ${opsText.padStart(8)} ops/s   (runs ${minNs.toFixed(1)}–${maxNs.toFixed(1)})`,
  );
}
