// The t: transformations (src/waf/transforms.ts) on byte strings, as ModSecurity v3 defines them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/waf/transforms.js';

test('lowercase / uppercase fold ASCII only and return the same string when there is nothing to do', () => {
  assert.equal(t.lowercase('SeLeCT \xC9'), 'select \xC9');
  assert.equal(t.uppercase('abc\xe9'), 'ABC\xe9');
  const s = 'already lower';
  assert.equal(t.lowercase(s), s);
});

test('urlDecode and urlDecodeUni: %XX, +, bad escapes kept, %uHHHH low byte with full-width folding', () => {
  assert.equal(t.urlDecode('a%20b+c%2'), 'a b c%2');
  assert.equal(t.urlDecode('%zz%41'), '%zzA');
  assert.equal(t.urlDecodeUni('%u0041%uff1c%U003e%41+'), 'A<>A ');
  assert.equal(t.urlDecodeUni('%u12'), '%u12');
});

test('htmlEntityDecode: numeric (hex and decimal, ; optional) and the five named entities', () => {
  assert.equal(t.htmlEntityDecode('&lt;script&gt; &#x41;&#66 &quot;&amp;&nbsp;&foo;'), '<script> AB "&\xa0&foo;');
});

test('jsDecode: \\x, \\u (low byte, full-width), octal, the C escapes, others lose the backslash', () => {
  assert.equal(t.jsDecode('\\x41\\u0042\\uff1c\\101\\n\\t\\q'), 'AB<A\n\tq');
});

test('cssDecode: 1-6 hex digits with one following space, escaped newline, escaped char', () => {
  assert.equal(t.cssDecode('\\6a \\61vascript\\:\\\nx'), 'javascript:x');
  assert.equal(t.cssDecode('a\\'), 'a');
});

test('cmdLine: drops quotes, ^ and \\; spaces before / and ( go; separators become one space; lower case', () => {
  assert.equal(t.cmdLine("C^at  /ETC/pa\\ss'wd;, ls ("), 'cat/etc/passwd ls(');
});

test('whitespace, nulls and comments', () => {
  assert.equal(t.compressWhitespace('a \t\n b\xa0c'), 'a b c');
  assert.equal(t.removeWhitespace(' a\tb \xa0c '), 'abc');
  assert.equal(t.removeNulls('a\0b\0\0c'), 'abc');
  assert.equal(t.replaceNulls('a\0b'), 'a b');
  assert.equal(t.replaceComments('se/**/lect/* x'), 'se lect ');
  assert.equal(t.removeComments('1 -- x'), '1 ');
});

test('normalizePath / normalizePathWin: ./, ../ (never above the root), //', () => {
  assert.equal(t.normalizePath('/a/./b/../../../etc//passwd'), '/etc/passwd');
  assert.equal(t.normalizePath('a/../../b/'), '../b/');
  assert.equal(t.normalizePath('/x/y/..'), '/x/');
  assert.equal(t.normalizePathWin('\\a\\..\\boot.ini'), '/boot.ini');
  const s = '/plain/path';
  assert.equal(t.normalizePath(s), s);
});

test('encodings, digests and length', () => {
  assert.equal(t.hexEncode('AB\xff'), '4142ff');
  assert.equal(t.hexDecode('414'), 'A');
  assert.equal(t.base64Decode('PHNjcmlwdD4='), '<script>');
  assert.equal(t.hexEncode(t.sha1('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(t.hexEncode(t.md5('')), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(t.length('h\xe9llo'), '5');
  assert.equal(t.trim(' \ta b\n'), 'a b');
});

test('sha1 and md5 keep their last digest: repeated and alternating inputs get their own', () => {
  for (let i = 0; i < 2; i++) {
    assert.equal(t.hexEncode(t.sha1('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(t.hexEncode(t.sha1('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(t.hexEncode(t.sha1('')), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
    assert.equal(t.hexEncode(t.md5('abc')), '900150983cd24fb0d6963f7d28e17f72');
    assert.equal(t.hexEncode(t.md5('')), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(t.hexEncode(t.md5('')), 'd41d8cd98f00b204e9800998ecf8427e');
  }
});

test('utf8toUnicode: multi-byte sequences become %uHHHH, invalid bytes stay', () => {
  // "é" and "€" in UTF-8 bytes, then a lone continuation byte
  assert.equal(t.utf8toUnicode('a\xc3\xa9\xe2\x82\xac\x80\xc3'), 'a%u00e9%u20ac\x80\xc3');
  assert.equal(t.utf8toUnicode('\xf0\x9f\x98\x80'), '%u1f600');
});

test('every transformation the CRS uses is in the table', () => {
  for (const name of ['base64Decode', 'cmdLine', 'compressWhitespace', 'cssDecode', 'hexEncode', 'htmlEntityDecode', 'jsDecode', 'length', 'lowercase', 'normalisePath', 'normalizePath', 'normalizePathWin', 'removeNulls', 'removeWhitespace', 'replaceComments', 'sha1', 'urlDecode', 'urlDecodeUni', 'utf8toUnicode']) {
    assert.equal(typeof t.TRANSFORMS[name.toLowerCase()], 'function', name);
  }
});
