// usher's @detectSQLi / @detectXSS (src/waf/detect) against ModSecurity v3's (libinjection, via
// nginx with Debian's libnginx-mod-http-modsecurity), input by input over our corpus
// (test/fixtures/waf-detect). Plain JS over the built dist: run `npm run build` first.
//
//   node bench/waf/detect-compare.js            summary and every disagreement
//   node bench/waf/detect-compare.js --all      every input
//   node bench/waf/detect-compare.js --json     the rows and figures as JSON
//   node bench/waf/detect-compare.js --holdout  the held-out set (never used to tune the rules)
//   node bench/waf/detect-compare.js --soup N   3000 seeded random SQL-ish fragments (agreement only)
//
// nginx runs in its own temp prefix on a unix socket with two rules only (see
// test/helpers/modsecurity.ts); it is stopped and its prefix removed at the end.
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, holdout: { type: 'boolean', default: false }, soup: { type: 'string' } } });
let compareWithModSecurity, holdout, soup;
try {
  ({ compareWithModSecurity } = await import('../../dist/test/helpers/detect-compare.js'));
  ({ holdout } = await import('../../dist/test/fixtures/waf-detect/holdout.js'));
  ({ soup } = await import('../../dist/test/fixtures/waf-detect/soup.js'));
} catch (err) {
  console.error(`cannot load dist/test/helpers/detect-compare.js (${err.code ?? err.message}): run npm run build first`);
  process.exit(1);
}
const c = await compareWithModSecurity(values.soup !== undefined ? soup(Number(values.soup)) : values.holdout ? holdout() : undefined);
if (values.json) console.log(JSON.stringify(c, null, 2));
else report(c);

function report(c) {
  const pct = (a, b) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)}%`);
  const mark = (b) => (b ? 'yes' : ' - ');
  for (const r of c.rows) {
    const s = r.usher.sqli === r.modsecurity.sqli;
    const x = r.usher.xss === r.modsecurity.xss;
    if (!values.all && s && x) continue;
    const fs = r.modsecurity.sqli ? (r.modsecurity.fingerprint ?? '?') : '-';
    const fu = r.usher.sqli ? r.usher.fingerprint : '-';
    console.log(
      `${s && x ? '  ' : '!='} ${r.kind.padEnd(6)} sqli modsec ${fs.padEnd(6)} usher ${fu.padEnd(6)} xss modsec ${mark(r.modsecurity.xss)} usher ${mark(r.usher.xss)}  ${JSON.stringify(r.input)}`,
    );
  }
  const n = c.rows.length;
  console.log('');
  console.log(`inputs: ${n} (${c.sqli.usher.attacks} SQLi, ${c.xss.usher.attacks} XSS, ${c.sqli.usher.benign} benign)`);
  console.log(`both verdicts agree: ${c.agree}/${n} (${pct(c.agree, n)}); SQLi ${c.sqli.agree}/${n} (${pct(c.sqli.agree, n)}); XSS ${c.xss.agree}/${n} (${pct(c.xss.agree, n)})`);
  console.log('');
  console.log('| detector | who | detected | detection rate | false positives | false-positive rate |');
  console.log('|---|---|---|---|---|---|');
  for (const kind of ['sqli', 'xss']) {
    for (const who of ['modsecurity', 'usher']) {
      const r = c[kind][who];
      console.log(`| ${kind} | ${who} | ${r.detected}/${r.attacks} | ${pct(r.detected, r.attacks)} | ${r.falsePositives}/${r.benign} | ${pct(r.falsePositives, r.benign)} |`);
    }
  }
}
