// The WAF's response phases (issue 14): phase 3's variables (RESPONSE_STATUS, _PROTOCOL,
// _HEADERS and _NAMES, _CONTENT_TYPE, _CONTENT_LENGTH) from the head, phase 4's RESPONSE_BODY
// and OUTBOUND_DATA_ERROR, the SecResponseBody* directives, and the CRS's outbound scoring
// (959100 denies in phase 4 over tx.outbound_anomaly_score_threshold).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Waf } from '../../src/waf/engine.js';
import { parseSecLang } from '../../src/waf/parse.js';
import { compileRules } from '../../src/waf/rules.js';
import { Transaction, type WafRequest, type WafResponse } from '../../src/waf/transaction.js';

const PRELUDE = 'SecRuleEngine On\nSecDefaultAction "phase:1,log,pass"\nSecDefaultAction "phase:2,log,pass"\n';
const REQ: WafRequest = { id: 'req-1', method: 'GET', target: '/x', httpVersion: '1.1', headers: ['Host', 'example.com'], remoteAddr: '192.0.2.9', remotePort: 4000 };
const RESP: WafResponse = { status: 502, httpVersion: '1.1', headers: ['Content-Type', 'text/html; charset=utf-8', 'Content-Length', '42', 'X-Powered-By', 'PHP/5.6.40'] };

function tx(rules: string, response = RESP, body?: string, overLimit = false): Transaction {
  const t = new Transaction(compileRules(parseSecLang(PRELUDE + rules, 't.conf')), REQ);
  t.runPhase(1);
  t.runPhase(2);
  t.setResponse(response);
  t.runPhase(3);
  if (body !== undefined) t.setResponseBody(body, overLimit);
  t.runPhase(4);
  return t;
}
const ids = (t: Transaction) => t.matched.map((m) => m.id);

test('RESPONSE_STATUS: the status code, in phase 3', () => {
  assert.deepEqual(ids(tx('SecRule RESPONSE_STATUS "@rx ^5\\d{2}$" "id:1,phase:3"\nSecRule RESPONSE_STATUS "@streq 200" "id:2,phase:3"')), [1]);
});

test('RESPONSE_PROTOCOL: HTTP/1.1, HTTP/2.0 for an HTTP/2 client', () => {
  assert.deepEqual(ids(tx('SecRule RESPONSE_PROTOCOL "@streq HTTP/1.1" "id:1,phase:3"')), [1]);
  assert.deepEqual(ids(tx('SecRule RESPONSE_PROTOCOL "@streq HTTP/2.0" "id:1,phase:3"', { ...RESP, httpVersion: '2' })), [1]);
});

test('RESPONSE_HEADERS: by name, case-insensitive selectors, values as sent; & counts', () => {
  const t = tx(
    [
      'SecRule RESPONSE_HEADERS:x-powered-by "@rx ^PHP/5" "id:1,phase:3,capture,setvar:tx.php=%{tx.0}"',
      'SecRule &RESPONSE_HEADERS "@eq 3" "id:2,phase:3"',
      'SecRule RESPONSE_HEADERS:Server "@unconditionalMatch" "id:3,phase:3"',
      'SecRule &RESPONSE_HEADERS:Server "@eq 0" "id:4,phase:3"',
    ].join('\n'),
  );
  assert.deepEqual(ids(t), [1, 2, 4]);
  assert.equal(t.txValue('php'), 'PHP/5');
});

test('RESPONSE_HEADERS_NAMES: the names as sent', () => {
  const t = tx('SecRule RESPONSE_HEADERS_NAMES "@streq X-Powered-By" "id:1,phase:3,capture,setvar:tx.n=%{MATCHED_VAR_NAME}"');
  assert.deepEqual(ids(t), [1]);
  assert.equal(t.txValue('n'), 'RESPONSE_HEADERS_NAMES:X-Powered-By');
});

test('RESPONSE_CONTENT_TYPE: the Content-Type field as sent; absent without one', () => {
  assert.deepEqual(ids(tx('SecRule RESPONSE_CONTENT_TYPE "@streq text/html; charset=utf-8" "id:1,phase:3"')), [1]);
  assert.deepEqual(ids(tx('SecRule &RESPONSE_CONTENT_TYPE "@eq 0" "id:1,phase:3"', { ...RESP, headers: ['X-A', 'b'] })), [1]);
});

test('RESPONSE_CONTENT_LENGTH: the Content-Length field; absent without one (chunked)', () => {
  assert.deepEqual(ids(tx('SecRule RESPONSE_CONTENT_LENGTH "@eq 42" "id:1,phase:3"')), [1]);
  assert.deepEqual(ids(tx('SecRule &RESPONSE_CONTENT_LENGTH "@eq 0" "id:1,phase:3"', { ...RESP, headers: ['Content-Type', 'text/html'] })), [1]);
});

test('RESPONSE_BODY: the body read, in phase 4 (never in phase 3); empty, not absent, when none was read', () => {
  const rules = 'SecRule RESPONSE_BODY "@contains secret" "id:1,phase:3"\nSecRule RESPONSE_BODY "@contains secret" "id:2,phase:4"\nSecRule &RESPONSE_BODY "@eq 1" "id:3,phase:4"';
  assert.deepEqual(ids(tx(rules, RESP, 'a secret leaked')), [2, 3]);
  assert.deepEqual(ids(tx(rules)), [3]);
});

test('OUTBOUND_DATA_ERROR: 1 when the body was longer than SecResponseBodyLimit', () => {
  const rule = 'SecRule OUTBOUND_DATA_ERROR "@eq 1" "id:1,phase:4"';
  assert.deepEqual(ids(tx(rule, RESP, 'abc', true)), [1]);
  assert.deepEqual(ids(tx(rule, RESP, 'abc', false)), []);
});

test('a response variable read before the response arrives does not stay cached empty', () => {
  const t = tx('SecRule &RESPONSE_STATUS "@eq 0" "id:1,phase:1"\nSecRule RESPONSE_STATUS "@streq 502" "id:2,phase:3"');
  assert.deepEqual(ids(t), [1, 2]);
});

test('a phase-3 or phase-4 deny interrupts; DetectionOnly records it', () => {
  assert.equal(tx('SecRule RESPONSE_STATUS "@streq 502" "id:1,phase:3,deny,status:403"').interruption?.ruleId, 1);
  const d = tx('SecRuleEngine DetectionOnly\nSecRule RESPONSE_BODY "@contains x" "id:2,phase:4,deny"', RESP, 'x');
  assert.equal(d.interruption, undefined);
  assert.equal(d.wouldInterrupt?.ruleId, 2);
});

test('SecResponseBodyMimeType, SecResponseBodyLimit, SecResponseBodyLimitAction', () => {
  const rs = compileRules(parseSecLang('SecResponseBodyAccess On\nSecResponseBodyMimeType text/plain text/HTML\nSecResponseBodyLimit 1000\nSecResponseBodyLimitAction Reject', 't.conf'));
  assert.equal(rs.settings.responseBodyAccess, true);
  assert.deepEqual([...(rs.settings.responseBodyMimeTypes ?? [])], ['text/plain', 'text/html']);
  assert.equal(rs.settings.responseBodyLimit, 1000);
  assert.equal(rs.settings.responseBodyLimitAction, 'Reject');
  const d = compileRules(parseSecLang('SecRuleEngine On', 't.conf')).settings;
  assert.equal(d.responseBodyAccess, false);
  assert.equal(d.responseBodyMimeTypes, undefined, 'every type until SecResponseBodyMimeType says');
  assert.equal(d.responseBodyLimit, 524288);
  assert.equal(d.responseBodyLimitAction, 'ProcessPartial');
  assert.throws(() => compileRules(parseSecLang('SecResponseBodyLimitAction Drop', 'x.conf')), /x\.conf:1.*Reject or ProcessPartial/);
  assert.deepEqual([...(compileRules(parseSecLang('SecResponseBodyMimeType text/html\nSecResponseBodyMimeTypesClear', 't.conf')).settings.responseBodyMimeTypes ?? ['x'])], []);
});

const CRS = '/usr/share/modsecurity-crs';
const LEAK = "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>";

test('the CRS: a MySQL error in the body scores 951230, 959100 denies over the outbound threshold; off, the phases do not run', () => {
  const base = { crs: CRS, paranoiaLevel: 1 as const, inboundThreshold: 5, outboundThreshold: 4, mode: 'block' as const, requestBodyLimit: 1 << 20 };
  const waf = new Waf({ ...base, responseBodyAccess: true, responseBodyMimeTypes: ['text/html'], responseBodyLimit: 4096 });
  assert.equal(waf.responsePhases, true);
  assert.equal(waf.responseBodyBytes(200, 'GET', 'text/html; charset=utf-8'), 4096);
  assert.equal(waf.responseBodyBytes(200, 'GET', 'application/json'), 0, 'not a listed type');
  assert.equal(waf.responseBodyBytes(200, 'HEAD', 'text/html'), 0);
  assert.equal(waf.responseBodyBytes(304, 'GET', 'text/html'), 0);
  const run = (body: string): Transaction => {
    const t = waf.transaction({ ...REQ, headers: ['Host', 'example.com', 'User-Agent', 'Mozilla/5.0', 'Accept', 'text/html'] });
    t.runPhase(1);
    t.runPhase(2);
    t.setResponse({ status: 200, httpVersion: '1.1', headers: ['Content-Type', 'text/html'] });
    t.runPhase(3);
    t.setResponseBody(body, false);
    t.runPhase(4);
    return t;
  };
  const bad = run(LEAK);
  assert.ok(ids(bad).includes(951230), JSON.stringify(ids(bad)));
  assert.equal(bad.interruption?.ruleId, 959100);
  assert.equal(bad.outboundScore, 5);
  assert.equal(bad.anomalyScore, 0, 'the inbound score is not the outbound one');
  const good = run('<html><body>hello</body></html>');
  assert.deepEqual(ids(good), []);
  assert.equal(good.interruption, undefined);
  assert.equal(good.outboundScore, 0);
  assert.equal(new Waf(base).responsePhases, false, 'SecResponseBodyAccess Off (the default)');
  assert.equal(new Waf({ ...base, responseBodyAccess: true, extraRules: ['SecResponseBodyAccess Off'] }).responsePhases, false, 'the operator\'s rules decide last');
});
