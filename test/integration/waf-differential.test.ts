// The differential test of issue 14: nginx + ModSecurity v3 + CRS and usher with the same CRS,
// at the same paranoia level, each in front of its own upstream, get the corpus
// (test/fixtures/waf-corpus) byte for byte; verdicts and matched CRS rule ids are compared
// request by request (test/helpers/waf-diff.ts). The verdict agreement may not fall under what
// was measured, and every request whose verdict differs is listed below with the reason, so a
// change in either engine's behaviour on the corpus shows here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpus } from '../fixtures/waf-corpus/index.js';
import { startModSecurity, type ParanoiaLevel } from '../helpers/modsecurity-crs.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';
import { diffTargets, modSecurityTarget, usherTarget, type Comparison } from '../helpers/waf-diff.js';

const CRS = '/usr/share/modsecurity-crs';

type After = { after: (fn: () => Promise<void>) => void };

async function differential(t: After, paranoia: ParanoiaLevel): Promise<Comparison> {
  const [refUp, usherUp] = await Promise.all([startUpstream('origin'), startUpstream('origin')]);
  t.after(() => refUp.close());
  t.after(() => usherUp.close());
  const ms = await startModSecurity({ paranoia, upstreamPort: refUp.port });
  t.after(() => ms.stop());
  // A generous time budget: the first requests after a load run cold, and the machine is shared.
  const u = await startUsher({
    upstreams: { origin: { servers: [usherUp.url] } },
    routes: [{ upstream: 'origin' }],
    waf: { crs: CRS, paranoia_level: paranoia, time_budget: '10s' },
  });
  t.after(() => u.close());
  return diffTargets(modSecurityTarget(ms), usherTarget({ port: u.port, upstream: usherUp, access: u.access }), corpus());
}

/** One line per request whose verdict differs: id, ModSecurity's verdict, usher's, their rules. */
const verdictLine = (e: Comparison['entries'][number]): string => `${e.id} modsecurity=${e.a.verdict}[${e.a.rules.join(',')}] usher=${e.b.verdict}[${e.b.rules.join(',')}]`;

/** WAF_DIFF_VERBOSE=1: every difference in rules too, and which rule ids differ most. */
function report(level: number, c: Comparison): void {
  if (process.env.WAF_DIFF_VERBOSE !== '1') return;
  console.log(`PL${level}: verdicts agree on ${c.verdictsAgree} of ${c.total}, rule ids on ${c.rulesAgree} of ${c.total}`);
  for (const e of c.entries) if (!e.rulesAgree) console.log(`  ${e.verdictAgrees ? 'rules' : 'VERDICT'} ${e.id} only modsecurity [${e.onlyA.join(',')}] only usher [${e.onlyB.join(',')}] (${e.a.verdict}/${e.b.verdict} ${e.b.status})`);
  const count = new Map<string, number>();
  for (const e of c.entries) for (const r of [...e.onlyA.map((x) => `only modsecurity ${x}`), ...e.onlyB.map((x) => `only usher ${x}`)]) count.set(r, (count.get(r) ?? 0) + 1);
  console.log([...count].sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${k}: ${v}`).join('\n'));
}

// Why the verdicts differ. usher's own HTTP handling answers 400 before the WAF runs for
// what nginx passes on to ModSecurity (so "rejected", not "passed": nothing reaches the upstream).
const REJECTED_BY_USHER = {
  'benign-rest-19': 'an encoded slash in the path (/files/folder%2Fsub%2Fdoc.txt): usher refuses %2F in a path; nginx passes it',
  'xss-path-01': 'an encoded slash in the path (%3C%2Fscript%3E): refused by usher with 400 before the WAF; ModSecurity blocks it with 941110',
  'protocol-method-01': "TRACK: Node's HTTP parser refuses a method it does not know with 400; ModSecurity blocks it with 911100",
  'protocol-method-03': 'CONNECTX: the same',
};
const DETECTOR = {
  'xss-09-query': "@detectSQLi: ModSecurity's libinjection fingerprints '-alert(1)-' as SQL (942100); usher's detector does not",
};

const EXPECTED: Record<number, { verdictsAtLeast: number; rulesAtLeast: number; differs: Record<string, string> }> = {
  1: { verdictsAtLeast: 487, rulesAtLeast: 483, differs: { ...REJECTED_BY_USHER, ...DETECTOR } },
  4: { verdictsAtLeast: 488, rulesAtLeast: 483, differs: { ...REJECTED_BY_USHER } },
};

for (const level of [1, 4] as const) {
  test(`PL${level}: usher and ModSecurity with the same CRS agree on the verdict of at least ${EXPECTED[level]!.verdictsAtLeast} and the rule ids of at least ${EXPECTED[level]!.rulesAtLeast} of the corpus's 492 requests; each verdict that differs is known`, async (t) => {
    const c = await differential(t, level);
    report(level, c);
    const want = EXPECTED[level]!;
    const differing = c.entries.filter((e) => !e.verdictAgrees);
    assert.deepEqual(differing.map((e) => e.id).sort(), Object.keys(want.differs).sort(), `the requests whose verdict differs:\n${differing.map(verdictLine).join('\n')}`);
    assert.ok(c.verdictsAgree >= want.verdictsAtLeast, `verdicts agree on ${c.verdictsAgree} of ${c.total}`);
    assert.ok(c.rulesAgree >= want.rulesAtLeast, `rule-id sets agree on ${c.rulesAgree} of ${c.total}`);
    assert.equal(c.total, 492);
    for (const e of differing) {
      if (!(e.id in REJECTED_BY_USHER)) continue;
      assert.equal(e.b.verdict, 'rejected', `${e.id}: usher refused it before the WAF`);
      assert.equal(e.b.status, 400, `${e.id}: with 400`);
    }
  });
}
