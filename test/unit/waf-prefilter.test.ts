// The @rx literal prefilter (src/waf/prefilter.ts): the literals it requires of a pattern, the
// patterns it refuses, and that a prefiltered operator answers as the plain regex does — on
// small patterns, through the engine after a transformation, and for every @rx of the installed
// CRS on the attack corpus, its transformed forms and the bench's benign form values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRuleFiles } from '../../src/waf/load.js';
import { compileOperator, type OperatorContext } from '../../src/waf/operators.js';
import { parseSecLang } from '../../src/waf/parse.js';
import { translatePcre } from '../../src/waf/pcre.js';
import { LiteralFilters, requiredLiterals } from '../../src/waf/prefilter.js';
import { compileRules } from '../../src/waf/rules.js';
import { Transaction } from '../../src/waf/transaction.js';
import { TRANSFORMS } from '../../src/waf/transforms.js';
import { corpus } from '../fixtures/waf-corpus/index.js';

const lits = (pcre: string): readonly string[] | undefined => requiredLiterals(translatePcre(pcre).source);
const sorted = (a: readonly string[] | undefined): string[] | undefined => (a === undefined ? undefined : [...a].sort());
const ctx = (): OperatorContext => ({ captures: undefined, macroValue: () => '' });

test('required literals: case-insensitive letters fold, alternations unite, concatenations combine, the longest wins', () => {
  assert.deepEqual(lits('(?i)select'), ['select']);
  assert.deepEqual(lits('(?i:UNION)\\s+all\\s+(?i:select)'), ['select']);
  assert.deepEqual(sorted(lits('(?:foo|barbaz)')), ['barbaz', 'foo']);
  assert.deepEqual(sorted(lits('(?:ab|cd)ef')), ['abef', 'cdef']);
  assert.deepEqual(sorted(lits('(?i)(?:exec(?:ute)?)\\b')), ['exec', 'execute']);
  assert.deepEqual(lits('\\bhttp\\/\\d'), ['http/']);
  assert.deepEqual(lits('\\x41BC\\x2e'), ['abc.']);
  assert.deepEqual(sorted(lits('[\'"]on\\w+=')), ['"on', "'on"]);
  assert.deepEqual(lits('(?:<script|x+)[^>]*>'), undefined, 'a branch with no literal');
});

test('required literals: refused where a match needs none (optional, empty branch, lookaround, back-reference, short)', () => {
  for (const p of ['\\d+', 'a*', '(?:abc)?x', '(?:abc|)d', '(?=abcdef)x', '(?!abc)def?', '(a)\\1bcd', '^.*$', '[a-z]{3,}', 'ab', '[^abc]def?']) {
    assert.equal(lits(p), undefined, p);
  }
  // inside a lookaround nothing is required, outside it may be
  assert.deepEqual(lits('(?<!abc)defg'), ['defg']);
  // {n} and + keep the atom's requirement; * and {0,n} drop it
  assert.deepEqual(lits('(?:abc){2}'), ['abc']);
  assert.deepEqual(lits('x(?:abc)+y'), ['abc']);
  assert.equal(lits('(?:abcd)*x'), undefined);
});

test('prefiltered @rx: a value with the literal in another case or only after a transformation still matches', () => {
  const filters = new LiteralFilters();
  const op = compileOperator('rx', '(?i)union\\s+select', { dir: '.', literals: filters });
  filters.build();
  assert.equal(op.fn('1 UNION SeLeCt 2', ctx()), true);
  assert.equal(op.fn('union all', ctx()), false);
  // without a shared set (and through the transaction's memo) the answers are the same
  const own = compileOperator('rx', '(?i)union\\s+select', { dir: '.' });
  assert.equal(own.fn('1 UNION SeLeCt 2', ctx()), true);
  assert.equal(own.fn('union all', ctx()), false);
  // ARGS are URL-decoded once; t:urlDecodeUni decodes %45 (E) only in the transformed value
  const rs = compileRules(
    parseSecLang(
      'SecRuleEngine On\nSecRule ARGS "@rx (?i)union\\s+select" "id:1,phase:1,t:none,t:urlDecodeUni,deny"\nSecRule ARGS "@rx \\bconcat\\(" "id:2,phase:1,t:none,t:lowercase,pass,log"',
      't.conf',
    ),
  );
  const tx = new Transaction(rs, { id: 'r', method: 'GET', target: '/?q=1%20UNION%20S%2545L%2545CT%202&c=CONCAT(1)', httpVersion: '1.1', headers: ['Host', 'x'], remoteAddr: '192.0.2.1', remotePort: 1 });
  tx.runPhase(1);
  assert.deepEqual(
    tx.matched.map((m) => m.id),
    [1],
  );
  const tx2 = new Transaction(rs, { id: 'r', method: 'GET', target: '/?c=CONCAT(1)', httpVersion: '1.1', headers: ['Host', 'x'], remoteAddr: '192.0.2.1', remotePort: 1 });
  tx2.runPhase(1);
  assert.deepEqual(
    tx2.matched.map((m) => m.id),
    [2],
  );
});

test('LiteralFilters: one pass marks every filter whose literals the value holds, case folded', () => {
  const f = new LiteralFilters();
  const a = f.add(['select', 'union']);
  const b = f.add(['lect']);
  const c = f.add(['<script']);
  f.build();
  const seen = f.scan('SELECT 1');
  assert.deepEqual([seen[a], seen[b], seen[c]], [1, 1, 0]);
  assert.deepEqual([...f.scan('<SCRIPT>')], [0, 0, 1]);
  assert.deepEqual([...f.scan('')], [0, 0, 0]);
});

/** The CRS's @rx patterns without macros (those compile per call and are not prefiltered). */
function crsPatterns(): string[] {
  const out: string[] = [];
  for (const d of loadRuleFiles('/usr/share/modsecurity-crs/rules/*.conf')) {
    if (d.lname !== 'secrule') continue;
    const op = d.args[1] ?? '';
    const m = /^!?@rx\s+([\s\S]*)$/.exec(op);
    const pattern = m !== null ? m[1] : op.startsWith('@') || op.startsWith('!@') ? undefined : op.replace(/^!/, '');
    if (pattern === undefined || pattern.includes('%{')) continue;
    out.push(pattern);
  }
  return [...new Set(out)];
}

test('every @rx of the installed CRS answers the same prefiltered and not, on attacks, their transformed forms and benign values', () => {
  const values = new Set<string>();
  const decode = TRANSFORMS.urldecodeuni as (s: string) => string;
  for (const e of corpus()) {
    const body = e.body === undefined ? '' : e.bodyBase64 === true ? Buffer.from(e.body, 'base64').toString('latin1') : Buffer.from(e.body, 'utf8').toString('latin1');
    const parts = [e.target, body, ...e.headers.map(([, v]) => v)];
    for (const p of [...parts, ...parts.flatMap((s) => s.split(/[?&=;]/))]) {
      values.add(p);
      for (const chain of [['urldecodeuni'], ['urldecodeuni', 'htmlentitydecode', 'jsdecode', 'cssdecode'], ['urldecodeuni', 'cmdline'], ['lowercase'], ['uppercase'], ['removewhitespace']]) {
        values.add(chain.reduce((v, t) => (TRANSFORMS[t] as (s: string) => string)(v), decode(p)));
      }
    }
  }
  // the bench's form values (words joined by _), which the prefilters should mostly rule out
  const words = ['order', 'shipping', 'address', 'customer', 'note', 'delivery', 'window', 'morning', 'gift', 'wrap', 'berlin', 'street'];
  const benign = words.map((_, i) => [...words.slice(i), ...words.slice(0, i)].join('_'));
  for (const b of benign) values.add(b);
  const filters = new LiteralFilters();
  const cases: Array<{ pattern: string; re: RegExp; op: ReturnType<typeof compileOperator> }> = [];
  let prefiltered = 0;
  for (const pattern of crsPatterns()) {
    let t;
    try {
      t = translatePcre(pattern);
    } catch {
      continue;
    }
    if (requiredLiterals(t.source) !== undefined) prefiltered++;
    cases.push({ pattern, re: new RegExp(t.source, t.flags), op: compileOperator('rx', pattern, { dir: '.', literals: filters }) });
  }
  filters.build();
  assert.ok(prefiltered >= 120, `only ${prefiltered} of ${cases.length} CRS patterns prefiltered`);
  let matches = 0;
  const list = [...values];
  for (const { pattern, re, op } of cases) {
    for (const v of list) {
      const want = re.test(v);
      if (want) matches++;
      assert.equal(op.fn(v, ctx()), want, `${pattern} on ${JSON.stringify(v.slice(0, 200))}`);
    }
  }
  // the comparison is not vacuous: many (pattern, value) pairs match
  assert.ok(matches >= 1000, `only ${matches} matches`);
  // and the filters do rule out most patterns on benign values
  for (const b of benign) {
    const seen = filters.scan(b).reduce((n, x) => n + x, 0);
    assert.ok(seen < filters.size / 4, `${seen} of ${filters.size} filters pass ${b}`);
  }
});

test('@pm in a rule set: the shared pass decides, the rule automaton captures', () => {
  const rs = compileRules(
    parseSecLang(
      'SecRuleEngine On\nSecRule ARGS "@pm passwd shadow" "id:1,phase:1,t:none,t:lowercase,capture,pass,log,logdata:%{TX.0}"\nSecRule ARGS "@pm .htaccess" "id:2,phase:1,t:none,t:urlDecodeUni,pass,log"',
      't.conf',
    ),
  );
  const run = (target: string): string[] => {
    const tx = new Transaction(rs, { id: 'r', method: 'GET', target, httpVersion: '1.1', headers: ['Host', 'x'], remoteAddr: '192.0.2.1', remotePort: 1 });
    tx.runPhase(1);
    return tx.matched.map((m) => `${m.id}:${m.data}`);
  };
  assert.deepEqual(run('/?f=ETC/SHADOW&g=x'), ['1:shadow']);
  // %252e is %2e after the parser's decoding, '.' only after t:urlDecodeUni
  assert.deepEqual(run('/?f=%252eHTACCESS'), ['2:']);
  assert.deepEqual(run('/?f=shad0w'), []);
});
