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

test('@pm automaton: the dense table finds what a naive search finds (first end position, longest phrase ending there), case-folded ASCII only', () => {
  const fold = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const naive = (phrases: string[], s: string): string | undefined => {
    const f = fold(s);
    for (let end = 1; end <= f.length; end++) {
      let best: string | undefined;
      for (const p of phrases) if (p !== '' && end >= p.length && f.slice(end - p.length, end) === fold(p) && (best === undefined || p.length > best.length)) best = p;
      if (best !== undefined) return best;
    }
    return undefined;
  };
  let x = 7;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  const alphabet = 'abAB/.-\xc4\xe4 ';
  const word = (n: number): string => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join('');
  for (let round = 0; round < 300; round++) {
    const phrases = Array.from({ length: 1 + rand(8) }, () => word(1 + rand(4)));
    const ac = new AhoCorasick(phrases);
    for (let k = 0; k < 20; k++) {
      const s = word(rand(16));
      assert.equal(ac.search(s), naive(phrases, s), `${JSON.stringify(phrases)} in ${JSON.stringify(s)}`);
    }
  }
  // bytes no phrase holds lead back to the start; latin1 letters are not folded
  assert.equal(new AhoCorasick(['ab']).search('a\x00b a\xffb AB'), 'ab');
  assert.equal(new AhoCorasick(['\xe4']).search('\xc4'), undefined);
  assert.equal(new AhoCorasick([]).search('anything'), undefined);
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

test('@detectSQLi and @detectXSS run the detectors of src/waf/detect; the SQLi fingerprint is TX:0', () => {
  const sqli = op('detectSQLi', '');
  const c = ctx({}, true);
  assert.equal(sqli("1' or '1'='1", c), true);
  assert.equal(typeof c.captures?.[0], 'string', 'the fingerprint is captured');
  assert.equal(sqli("O'Brien", ctx()), false);
  const xss = op('detectXSS', '');
  assert.equal(xss('<script>alert(1)</script>', ctx()), true);
  assert.equal(xss('fish & chips <3', ctx()), false);
});

test('the operators usher cannot run are unsupported, with the reason', () => {
  assert.throws(() => compileOperator('rbl', 'x', env), UnsupportedError);
  assert.throws(() => compileOperator('geoLookup', '', env), /GeoIP/);
  assert.throws(() => compileOperator('noSuchOp', '', env), /unknown operator @noSuchOp/);
});
