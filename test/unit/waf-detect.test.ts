// usher's own @detectSQLi / @detectXSS (src/waf/detect): the tokenizer's folding, and detection
// on must-detect and must-not-detect lists written here. Agreement with ModSecurity itself is
// test/integration/waf-detect-modsecurity.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectSqli, detectXss } from '../../src/waf/detect/index.js';
import { SqlTokens, tokenize } from '../../src/waf/detect/sqli.js';
import { EV } from '../../src/waf/detect/tokens.js';

function fp(input: string, quote = 0): string {
  const t = new SqlTokens();
  tokenize(input, quote, t);
  return t.fingerprint();
}

function evidence(input: string, quote = 0): number {
  const t = new SqlTokens();
  tokenize(input, quote, t);
  return t.evidence;
}

test('tokenizer: types of strings, numbers, words, keywords, operators, variables, punctuation', () => {
  assert.equal(fp("'a' 1 x from"), 's1nk');
  assert.equal(fp('select union @a @@version'), 'EUvv');
  assert.equal(fp('a , ( ) ;'), 'n,();');
  assert.equal(fp('0x41 0b01 1.5e3 .5'), '1111');
  assert.equal(fp('`weird name` [x]'), 'nn');
  assert.equal(fp('x or y and z'), 'n&n&n');
  assert.equal(fp('null true FALSE'), '111');
});

test('tokenizer: the quote contexts start with the string the input closes', () => {
  assert.equal(fp("x' or 'a'='a", 0x27), 's&sos');
  assert.equal(fp("O'Brien", 0x27), 'sn');
  assert.equal(fp("O'Brien", 0), 'ns');
  assert.equal(fp('x" or 1=1--', 0x22), 's&1c');
  assert.equal(fp("it''s' or 1", 0x27), 's&1', 'a doubled quote is an escaped quote');
  assert.equal(fp("it\\'s' or 1", 0x27), 's&1', 'a backslash escapes a quote');
});

test('tokenizer: folding (comments, value op value, unary, multi-word keywords, strings, parentheses)', () => {
  assert.equal(fp('1/**/or/**/1=1'), '1&1');
  assert.equal(evidence('1/**/or/**/1=1') & (EV.COMMENT | EV.FOLD), EV.COMMENT | EV.FOLD);
  assert.equal(fp('-1 or 1'), '1&1');
  assert.equal(evidence('-1 or 1') & EV.UNARY, EV.UNARY);
  assert.equal(evidence('1 || 1') & EV.SYMBOL, EV.SYMBOL);
  assert.equal(fp('1 union all select 1'), '1UE1');
  assert.equal(fp('1 order by 2'), '1B1');
  assert.equal(fp("1 waitfor delay '0:0:5'"), '1Es');
  assert.equal(fp("'a' 'b' 'c'"), 's');
  assert.equal(fp('((1)) or 1'), '1)&1');
  assert.equal(fp('1 is not null'), '1');
  assert.equal(fp('Spider-Man'), 'n');
  assert.equal(evidence('Spider-Man') & EV.FOLD, 0, 'arithmetic folds without evidence');
  assert.equal(fp('sleep(5) sleep (5)'), 'f(1)n', 'a function needs "(" right after its name');
  assert.equal(fp('1/*!union*/select 1'), '1XUE1');
  assert.equal(fp('1 -- x\nunion select'), '1UE', 'a -- comment ends at the newline');
  assert.equal(fp("'a'::text"), 'son', ':: before a name is a cast');
  assert.equal(fp('[::1]'), '1', 'the :: of an IPv6 address is not');
});

test('tokenizer: stops at eight folded tokens; the fingerprint is the first five', () => {
  const t = new SqlTokens();
  tokenize('a b c d e f g h i j k l', 0, t);
  assert.equal(t.count, 8);
  assert.equal(t.fingerprint(), 'nnnnn');
});

const SQLI_DETECT: [string, string][] = [
  ["' or '1'='1", 's&sos'],
  ["1' or '1'='1", 's&sos'],
  ['1 or 1=1', '1&1'],
  ['1 or 1=1--', '1&1c'],
  ['-1 or 1', '1&1'],
  ['1 || 1=1', '1&1'],
  ['abc or 1=1', 'n&1'],
  ["admin'--", 'sc'],
  ['1--', '1c'],
  ["x' or 1#", 's&1c'],
  ['1 union select 1,2', '1UE1,'],
  ['-1 union all select 1,2,3--', '1UE1,'],
  ['the union select committee', 'nUEn'],
  ['1;drop table users--', '1;Ekn'],
  ["x'; drop table y--", 's;Ekn'],
  ['1; select * from users', '1;Eok'],
  ['sleep(5)', 'f(1)'],
  ['1 and sleep(5)', '1&f(1'],
  ["' and extractvalue(1,concat(0x7e,version()))--", 's&f(1'],
  ['1 and (select 1)', '1&(E1'],
  ['1 = (select 1)', '1o(E1'],
  ["' having 1=1--", 'sB1c'],
  ['1 order by 1--', '1B1c'],
  ['x order by 2', 'nB1'],
  ["1' waitfor delay '0:0:5'--", 'sEsc'],
  ["1 waitfor delay '0:0:5'", '1Es'],
  ["' into outfile '/tmp/x'", 'sks'],
  ["') or ('1'='1", 's)&(s'],
  ["')) or 1=1 --", 's)&1c'],
  ['1) or (1=1', '1)&(1'],
  ['1/*!union*/select 1', '1XUE1'],
  ['1/**/or/**/1=1', '1&1'],
  ['" or ""="', 's&sos'],
  ["x' and a=a", 's&n'],
  ["'='", 'sos'],
];

test('SQLi: must detect (with the fingerprint)', () => {
  for (const [input, fingerprint] of SQLI_DETECT) assert.equal(detectSqli(input), fingerprint, input);
});

const SQLI_PASS = [
  '', 'hello', "O'Brien", "D'Angelo", "McDonald's or Wendy's", "Tom's and Jerry's", 'Rock\' and roll', "rock 'n' roll",
  'apples or oranges', '3 or 4 bedrooms', '1 or 2', '1 and 1', 'hello or 5', 'Spider-Man or Batman', 'select items from the list',
  'I want to select a product or two', 'select * from users', 'hi; select one', 'union select', '1#', "admin'#", 'admin--',
  'hello -- world', 'in order by date', 'Max (the dog)', '@@version', 'price and quality = good', "It's 5 o'clock",
  'the "select" statement', 'Drop me a line', 'Where are you from?', 'john.doe@example.com', '{"id":1,"name":"x"}',
  '2024-01-31', 'https://example.com/a?b=c&d=e', 'C:\\Program Files\\App', '1,000,000', '-3.14', 'Ctrl+Alt+Del', "Dunkin' + Donuts",
  '9999 or x=x', "it's='ok'", '{"match":{"hosts":[],"path":"/api"}}', 'address: "[::1]:8443"', '"::1/128"',
  'key: "-----BEGIN PUBLIC KEY-----"', "admin'--x", 'a && b || c', 'Timeouts and limits ** (see below)',
];

test('SQLi: must not detect', () => {
  for (const input of SQLI_PASS) assert.equal(detectSqli(input), undefined, input);
});

const XSS_DETECT = [
  '<script>alert(1)</script>', '<ScRiPt>alert(1)</sCrIpT>', '<img src=x onerror=alert(1)>', '<svg onload=alert(1)>', '<svg>',
  '<iframe src=x>', '<object data=x>', '<embed src=x>', '<style>', '<link rel=x>', '<meta http-equiv=refresh>', '<base href=x>',
  '<xml>', '<body onload=alert(1)>', '<x onclick=1>', '<div onabc=1>', '<div style="color:red">', '<a href="javascript:alert(1)">x</a>',
  '<a href=" javascript:alert(1)">', '<a href=vbscript:msgbox(1)>', '<a href="data:text/html,<script>">', '<a href="javascript&colon;x">',
  '<a href="&#106;avascript:alert(1)">', '<a href="jav&#x09;ascript:alert(1)">', '<table background=javascript:alert(1)>',
  '" onmouseover="alert(1)', "' onmouseover='alert(1)", 'x onmouseover=alert(1)', '` onload=alert(1)', 'x" style="x',
  'x" href="javascript:alert(1)', '"><script>alert(1)</script>', '<!--[if gte IE 4]>', '<!doctype html>', '<?xml version="1.0"?>',
  '<img src=`x` onerror=alert(1)>', '<img/src/onerror=alert(1)>',
];

test('XSS: must detect', () => {
  for (const input of XSS_DETECT) assert.equal(detectXss(input), true, input);
});

const XSS_PASS = [
  '', 'hello', '<b>bold</b>', '<i>hi</i>', '<p>', '<br/>', '<a href="http://x">x</a>', '<img src=x>', '<img src="x.png" alt="hi">',
  '<!-- hi -->', '1 < 2', 'a<b', '<3', '</script>', '<a title=onclick>', '<div on=1>', '<div onx=1>', '<a foo="javascript:x">',
  'javascript:alert(1)', 'x onclick', 'a online', 'we meet once a week', '<math>', '<video src=x>', '<input value=x>', '<form action=x>',
  'key=value', 'a=1&b=2', 'https://example.com/a?b=c&d=e', "O'Brien = CEO", 'x = "y"', 'online shopping', 'how to style a div',
];

test('XSS: must not detect', () => {
  for (const input of XSS_PASS) assert.equal(detectXss(input), false, input);
});

test('the detectors are pure: the same input gives the same answer after others (shared state is reset)', () => {
  const a = detectSqli("' or '1'='1");
  detectSqli('a b c d e f g h i j k l m n o p');
  detectXss('<svg onload=alert(1)>');
  assert.equal(detectSqli("' or '1'='1"), a);
  assert.equal(detectSqli('hello'), undefined);
  assert.equal(detectXss('hello'), false);
});

test('random inputs: no throw, a fingerprint of 1-5 token letters or undefined, a boolean', () => {
  // xorshift32, fixed seed: the same 20,000 inputs every run.
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const alphabet = ` \t\n'"\`()[]{},;:=<>!&|+-*/%^~@#.\\?$_01289abcdefgxyzORANDUNIONSELECTsleep<script>on=javascript:&#x;-- /*!*/é中\u0000\u00a0`;
  for (let i = 0; i < 20_000; i++) {
    const len = next() % 120;
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length];
    const f = detectSqli(s);
    assert.ok(f === undefined || /^[s1nkEUB&ofvc(),;X]{1,5}$/.test(f), `${JSON.stringify(s)} -> ${f}`);
    assert.equal(typeof detectXss(s), 'boolean');
  }
});

test('large inputs of what the scanners search for are read once (no throw; tokenising stops at 8 tokens)', () => {
  for (const unit of ['<!---->', "'", '"', '((', '/*', '--\n', '<a ', 'x=', '&#', '<!', '`', 'or 1 ']) {
    const s = unit.repeat(Math.ceil(100_000 / unit.length));
    detectSqli(s);
    detectXss(s);
  }
  const t = new SqlTokens();
  tokenize(`${'1+'.repeat(50_000)}1`, 0, t);
  assert.equal(t.count, 1, 'value op value folds all the way');
});
