// The operators (src/waf/operators.ts), the PCRE translation (pcre.ts) and @pm's automaton.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AhoCorasick } from '../../src/waf/aho-corasick.js';
import { type OperatorContext, UnsupportedError, compileOperator, invalidUrlEncoding, invalidUtf8 } from '../../src/waf/operators.js';
import { PcreError, translatePcre } from '../../src/waf/pcre.js';

const env = { dir: '/nonexistent' };
const ctx = (vars: Record<string, string> = {}, capture = false): OperatorContext => ({
  captures: capture ? [] : undefined,
  macroValue: (c, k) => vars[`${c}.${k ?? ''}`] ?? '',
});
const op = (name: string, arg: string) => compileOperator(name, arg, env).fn;

test('PCRE translation: inline flags, (?i:...) in a mixed pattern, dot, $, \\A \\Z, POSIX, leading ], braces', () => {
  assert.deepEqual(translatePcre('(?i)^ab[c-d]'), { source: '^[aA][bB][c-d\\x43-\\x44]', flags: '', approximations: [] });
  assert.deepEqual(translatePcre('^(?i)up'), { source: '^[uU][pP]', flags: '', approximations: [] });
  assert.ok(!new RegExp(translatePcre('(?i)caf\xe9').source).test('CAF\xc9'), 'ASCII letters only fold, as PCRE without UTF');
  const mixed = new RegExp(translatePcre('a(?i:bc)D').source, translatePcre('a(?i:bc)D').flags);
  assert.ok(mixed.test('aBcD') && mixed.test('abCD'));
  assert.ok(!mixed.test('ABCD') && !mixed.test('abcd'));
  const cls = translatePcre('x(?i:[a-c]+)X');
  assert.ok(new RegExp(cls.source, cls.flags).test('xAbCX'));
  assert.equal(translatePcre('a.b').source, 'a[^\\n]b');
  assert.ok(new RegExp(translatePcre('a.b').source).test('a\rb'), 'PCRE dot matches \\r');
  assert.ok(new RegExp(translatePcre('(?s)a.b').source).test('a\nb'));
  assert.ok(new RegExp(translatePcre('abc$').source).test('abc\n'), 'PCRE $ matches before a final newline');
  assert.ok(new RegExp(translatePcre('\\Aab\\Z').source).test('ab\n'));
  assert.ok(new RegExp(translatePcre('^[[:alpha:]]+$').source).test('abcXYZ'));
  assert.ok(new RegExp(translatePcre('^[]a]+$').source).test(']a]'));
  assert.ok(new RegExp(translatePcre('^a{,2}$').source).test('a{,2}'), 'not a quantifier: literal');
  assert.ok(new RegExp(translatePcre('^\\x{41}\\h\\Qa.b\\E$').source).test('A a.b'));
  const poss = translatePcre('a*+b');
  assert.equal(poss.source, 'a*b');
  assert.deepEqual(poss.approximations, ['possessive quantifier']);
  assert.throws(() => translatePcre('a\\Kb'), PcreError);
  assert.throws(() => translatePcre('(?(1)a|b)'), PcreError);
  assert.throws(() => translatePcre('(?x) a'), PcreError);
});

test('@rx: test, captures into TX:0-9, negation is the caller’s; untranslatable is unsupported', () => {
  assert.equal(op('rx', '(?i)union\\s+select')('x UNION  SELECT y', ctx()), true);
  const c = ctx({}, true);
  assert.equal(op('rx', '^(\\w+)=(\\d+)')('id=42', c), true);
  assert.deepEqual(c.captures?.slice(0, 3), ['id=42', 'id', '42']);
  assert.throws(() => compileOperator('rx', '(?R)', env), UnsupportedError);
});

test('@pm: case-insensitive phrases, the first found is captured; the automaton handles overlaps', () => {
  const c = ctx({}, true);
  assert.equal(op('pm', 'passwd shadow .htaccess')('GET /ETC/PASSWD', c), true);
  assert.equal(c.captures?.[0], 'passwd');
  assert.equal(op('pm', 'abc bcd')('xbcd', ctx()), true);
  const ac = new AhoCorasick(['he', 'she', 'hers', 'his']);
  assert.equal(ac.search('ushers'), 'she');
  assert.equal(ac.search('ahishers'), 'his');
  assert.equal(ac.search('nothing here'), 'he');
  assert.equal(ac.search('xyz'), undefined);
});

test('@pmFromFile and @ipMatchFromFile read files next to the rule, skipping comments and blanks', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'waf-op-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'words.data'), '# comment\n\nnikto\nsqlmap\n');
  writeFileSync(join(dir, 'ips.data'), '10.0.0.0/8\n2001:db8::/32\n');
  const e = { dir };
  assert.equal(compileOperator('pmFromFile', 'words.data', e).fn('Mozilla (SQLMap/1.0)', ctx()), true);
  assert.equal(compileOperator('pmFromFile', 'words.data', e).fn('Mozilla', ctx()), false);
  assert.equal(compileOperator('ipMatchFromFile', 'ips.data', e).fn('10.1.2.3', ctx()), true);
  assert.equal(compileOperator('ipMatchFromFile', 'ips.data', e).fn('2001:db8::1', ctx()), true);
  assert.equal(compileOperator('ipMatchFromFile', 'ips.data', e).fn('192.0.2.1', ctx()), false);
  assert.throws(() => compileOperator('pmFromFile', 'missing.data', e), /cannot read data file/);
});

test('string operators, with macros in the argument', () => {
  const c = ctx({ 'TX.allowed_methods': 'GET HEAD POST' });
  assert.equal(op('within', '%{tx.allowed_methods}')('POST', c), true);
  assert.equal(op('within', '%{tx.allowed_methods}')('DELETE', c), false);
  assert.equal(op('streq', 'POST')('POST', c), true);
  assert.equal(op('streq', 'POST')('post', c), false);
  assert.equal(op('contains', 'ab')('xaby', c), true);
  assert.equal(op('containsWord', 'select')('a select b', c), true);
  assert.equal(op('containsWord', 'select')('selection', c), false);
  assert.equal(op('beginsWith', '/adm')('/admin', c), true);
  assert.equal(op('endsWith', '.php')('/x.php', c), true);
  assert.equal(op('endsWith', '.php')('/x.php5', c), false);
});

test('numeric comparisons read the value as atoi does', () => {
  const c = ctx({ 'TX.pl': '2' });
  assert.equal(op('eq', '0')('', c), true);
  assert.equal(op('eq', '5')('5abc', c), true);
  assert.equal(op('ge', '%{tx.pl}')('2', c), true);
  assert.equal(op('gt', '%{tx.pl}')('2', c), false);
  assert.equal(op('le', '3')('3', c), true);
  assert.equal(op('lt', '%{tx.pl}')('1', c), true);
});

test('@ipMatch, @validateByteRange, @validateUrlEncoding, @validateUtf8Encoding, @unconditionalMatch', () => {
  assert.equal(op('ipMatch', '127.0.0.1,::1, 192.168.0.0/16')('192.168.4.4', ctx()), true);
  assert.equal(op('ipMatch', '127.0.0.1,::1')('::1', ctx()), true);
  assert.equal(op('ipMatch', '127.0.0.1')('not an ip', ctx()), false);
  assert.equal(op('validateByteRange', '32-126')('plain text', ctx()), false);
  assert.equal(op('validateByteRange', '32-126')('tab\there', ctx()), true);
  assert.equal(op('validateByteRange', '9,10,13,32-126')('tab\there', ctx()), false);
  assert.throws(() => op('validateByteRange', '1-300'), /bad range/);
  assert.equal(invalidUrlEncoding('a%20b'), false);
  assert.equal(invalidUrlEncoding('a%2'), true);
  assert.equal(invalidUrlEncoding('a%zz'), true);
  assert.equal(invalidUtf8('caf\xc3\xa9'), false);
  assert.equal(invalidUtf8('caf\xc3'), true, 'truncated');
  assert.equal(invalidUtf8('\xc0\xaf'), true, 'overlong /');
  assert.equal(invalidUtf8('\xed\xa0\x80'), true, 'surrogate');
  assert.equal(op('unconditionalMatch', '')('anything', ctx()), true);
});

test('the operators usher cannot run are unsupported, with the reason; the detectors are wired in', () => {
  assert.equal(typeof compileOperator('detectSQLi', '', env).fn, 'function');
  assert.equal(typeof compileOperator('detectXSS', '', env).fn, 'function');
  assert.throws(() => compileOperator('rbl', 'bl.example', env), UnsupportedError);
  assert.throws(() => compileOperator('geoLookup', '', env), /GeoIP/);
  assert.throws(() => compileOperator('noSuchOp', '', env), /unknown operator @noSuchOp/);
});
