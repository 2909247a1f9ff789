// SecLang reading (src/waf/parse.ts, syntax.ts, load.ts): continuations, quoting, comments,
// Include with globs, the three mini-languages of a SecRule, and errors with file:line.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRuleFiles } from '../../src/waf/load.js';
import { SecLangError, parseSecLang } from '../../src/waf/parse.js';
import { parseActions, parseOperator, parseTargets } from '../../src/waf/syntax.js';

test('continuations join lines; comments and blank lines go; lines are where a directive starts', () => {
  const text = [
    '# a comment ending in a backslash \\',
    'SecRuleEngine On',
    '',
    '  SecRule ARGS "@rx a\\"b\\\\d" \\',
    '    "id:1,\\',
    '    phase:2,pass"',
    'SecMarker END',
  ].join('\n');
  const ds = parseSecLang(text, 'x.conf');
  assert.deepEqual(
    ds.map((d) => [d.name, d.args, d.origin.line]),
    [
      ['SecRuleEngine', ['On'], 2],
      ['SecRule', ['ARGS', '@rx a"b\\\\d', 'id:1,    phase:2,pass'], 4],
      ['SecMarker', ['END'], 7],
    ],
  );
  assert.equal(ds[1]?.lname, 'secrule');
});

test('an unterminated quote is an error with file:line', () => {
  assert.throws(() => parseSecLang('\nSecRule ARGS "@rx a', 'r.conf'), (err: unknown) => {
    assert.ok(err instanceof SecLangError);
    assert.match(err.message, /^r\.conf:2: unterminated quoted argument/);
    return true;
  });
});

test('targets: collections, selectors, regex selectors with |, counts, exclusions, XML paths', () => {
  assert.deepEqual(parseTargets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|x/|&TX:foo|ARGS:'a b'|XML:/*|request_headers:User-Agent"), [
    { collection: 'REQUEST_COOKIES', selector: undefined, selectorIsRegex: false, count: false, exclude: false },
    { collection: 'REQUEST_COOKIES', selector: '__utm|x', selectorIsRegex: true, count: false, exclude: true },
    { collection: 'TX', selector: 'foo', selectorIsRegex: false, count: true, exclude: false },
    { collection: 'ARGS', selector: 'a b', selectorIsRegex: false, count: false, exclude: false },
    { collection: 'XML', selector: '/*', selectorIsRegex: false, count: false, exclude: false },
    { collection: 'REQUEST_HEADERS', selector: 'User-Agent', selectorIsRegex: false, count: false, exclude: false },
  ]);
  assert.throws(() => parseTargets('ARGS:/abc'), /unterminated \/regex\/ selector/);
});

test('operators: @name and argument, negation, a bare pattern is @rx', () => {
  assert.deepEqual(parseOperator('@rx ^a b$'), { name: 'rx', argument: '^a b$', negated: false });
  assert.deepEqual(parseOperator('!@within |GET| |POST|'), { name: 'within', argument: '|GET| |POST|', negated: true });
  assert.deepEqual(parseOperator('^(?:a|b)'), { name: 'rx', argument: '^(?:a|b)', negated: false });
  assert.deepEqual(parseOperator('@unconditionalMatch'), { name: 'unconditionalMatch', argument: '', negated: false });
});

test("actions: names lower-cased, 'quoted' values with commas and \\', bare values", () => {
  assert.deepEqual(parseActions("id:5, phase:2,t:none,msg:'a, b \\'c\\'', setvar:'tx.x=+%{tx.y}',ctl:ruleRemoveTargetById=1;ARGS:x,nolog,skipAfter:END"), [
    { name: 'id', value: '5' },
    { name: 'phase', value: '2' },
    { name: 't', value: 'none' },
    { name: 'msg', value: "a, b 'c'" },
    { name: 'setvar', value: 'tx.x=+%{tx.y}' },
    { name: 'ctl', value: 'ruleRemoveTargetById=1;ARGS:x' },
    { name: 'nolog', value: undefined },
    { name: 'skipafter', value: 'END' },
  ]);
  assert.throws(() => parseActions("msg:'open"), /unterminated quoted value of action "msg"/);
});

test('Include resolves relative paths and globs in name order; a missing file names the Include', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'waf-parse-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'rules', 'b.conf'), 'SecMarker B\n');
  writeFileSync(join(dir, 'rules', 'a.conf'), 'SecMarker A\n');
  writeFileSync(join(dir, 'rules', 'c.data'), 'not a rule file\n');
  writeFileSync(join(dir, 'main.conf'), 'SecMarker START\nInclude rules/*.conf\nSecMarker END\n');
  assert.deepEqual(loadRuleFiles(join(dir, 'main.conf')).map((d) => d.args[0]), ['START', 'A', 'B', 'END']);
  writeFileSync(join(dir, 'bad.conf'), '\n\nInclude nothere.conf\n');
  assert.throws(() => loadRuleFiles(join(dir, 'bad.conf')), /bad\.conf:3: Include: cannot read .*nothere\.conf: ENOENT/);
  writeFileSync(join(dir, 'opt.conf'), 'IncludeOptional nothere.conf\nInclude none/*.conf\nSecMarker X\n');
  assert.deepEqual(loadRuleFiles(join(dir, 'opt.conf')).map((d) => d.args[0]), ['X']);
  writeFileSync(join(dir, 'loop.conf'), 'Include loop.conf\n');
  assert.throws(() => loadRuleFiles(join(dir, 'loop.conf')), /loop\.conf:1: Include: .* included twice/);
});
