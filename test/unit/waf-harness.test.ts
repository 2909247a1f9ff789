// The pure parts of the WAF reference harness (issue 14): the generated ModSecurity + CRS setup,
// the bytes a corpus entry becomes, audit-log parsing and the run comparison. The harness
// against a running ModSecurity is test/integration/waf-modsecurity-reference.test.ts.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { corpus, type CorpusEntry } from '../fixtures/waf-corpus/index.js';
import { AuditLogReader, crsRuleFiles, inboundScore, modSecurityConf, parseAuditLine } from '../helpers/modsecurity-crs.js';
import { compareRuns, requestBytes, summarise, TAG_HEADER, type CorpusResult, type Observation } from '../helpers/waf-diff.js';

test('modSecurityConf: the paranoia level, thresholds, engine mode and tx variables become SecActions; every CRS rule file is included, in order', () => {
  const conf = modSecurityConf({ paranoia: 3, inboundThreshold: 7, outboundThreshold: 6, detectionOnly: true, workDir: '/w', auditLog: '/w/a.log', tx: { arg_length: 400 } });
  assert.match(conf, /^SecRuleEngine DetectionOnly$/m);
  assert.match(conf, /"id:900000,phase:1,nolog,pass,t:none,setvar:tx\.paranoia_level=3"/);
  assert.match(conf, /setvar:tx\.inbound_anomaly_score_threshold=7,setvar:tx\.outbound_anomaly_score_threshold=6"/);
  assert.match(conf, /"id:900150,phase:1,nolog,pass,t:none,setvar:tx\.arg_length=400"/);
  assert.match(conf, /setvar:tx\.crs_setup_version=334/);
  assert.match(conf, /^SecAuditLog \/w\/a\.log$/m);
  const includes = conf.split('\n').filter((l) => l.startsWith('Include ')).map((l) => l.slice('Include '.length));
  assert.deepEqual(includes, crsRuleFiles());
  assert.ok(includes.length >= 25 && includes[0]!.endsWith('REQUEST-901-INITIALIZATION.conf') && includes.at(-1)!.endsWith('RESPONSE-980-CORRELATION.conf'));
  // Defaults: PL1, 5/4, blocking; an audit log is required unless audit is off.
  const plain = modSecurityConf({ workDir: '/w', audit: 'off' });
  assert.match(plain, /^SecRuleEngine On$/m);
  assert.match(plain, /tx\.paranoia_level=1"/);
  assert.match(plain, /inbound_anomaly_score_threshold=5,setvar:tx\.outbound_anomaly_score_threshold=4"/);
  assert.doesNotMatch(plain, /SecAuditLog /);
  assert.throws(() => modSecurityConf({ workDir: '/w' }), /auditLog is required/);
});

test('requestBytes: the entry as written, tagged, with Host, Content-Length and Connection: close added unless given', () => {
  const e: CorpusEntry = { id: 'x-1', category: 'sqli', expected: 'attack', method: 'POST', target: "/a?q=1'%20or", headers: [['X_Under', 'v'], ['Cookie', 'a=1']], body: 'é=1' };
  assert.equal(requestBytes(e).toString('utf8'), `POST /a?q=1'%20or HTTP/1.1\r\nHost: localhost\r\nX_Under: v\r\nCookie: a=1\r\n${TAG_HEADER}: x-1\r\nContent-Length: 4\r\nConnection: close\r\n\r\né=1`);
  const own: CorpusEntry = { id: 'x-2', category: 'protocol', expected: 'attack', method: 'GET', target: '/', version: '1.0', noHost: true, headers: [['Content-Length', '0'], ['Connection', 'keep-alive']] };
  assert.equal(requestBytes(own, null).toString('latin1'), 'GET / HTTP/1.0\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n');
  const bin: CorpusEntry = { id: 'x-3', category: 'benign', expected: 'benign', method: 'POST', target: '/', headers: [], body: Buffer.from([0, 255, 10]).toString('base64'), bodyBase64: true };
  assert.deepEqual([...requestBytes(bin, null).subarray(-3)], [0, 255, 10]);
});

test('the corpus: unique ids, expected follows the category, every request line is one line and starts with /', () => {
  const all = corpus();
  assert.equal(new Set(all.map((e) => e.id)).size, all.length);
  for (const e of all) {
    assert.equal(e.expected, e.category === 'benign' ? 'benign' : 'attack', e.id);
    assert.match(e.target, /^\/[^\s]*$/, `${e.id}: target`);
    for (const [k, v] of e.headers) assert.ok(/^[!-9;-~]+$/.test(k) && !/[\r\n]/.test(v), `${e.id}: header ${k}`);
  }
  assert.ok(all.filter((e) => e.expected === 'benign').length >= 300);
});

const AUDIT = JSON.stringify({
  transaction: {
    unique_id: '1.2',
    request: { method: 'GET', uri: '/?id=1', headers: { Host: 'localhost', 'x-corpus-id': 'sqli-01' } },
    response: { http_code: 403 },
    messages: [
      { message: 'SQL Injection Attack Detected via libinjection', details: { ruleId: '942100', data: 'Matched Data: s&1c', severity: '2', tags: [] } },
      { message: 'Inbound Anomaly Score Exceeded (Total Score: 8)', details: { ruleId: '949110', data: '', severity: '2', tags: ['attack-generic'] } },
    ],
  },
});

test('audit records: parsed to the matched rules and the score; the reader returns whole lines as the log grows', () => {
  const r = parseAuditLine(AUDIT);
  assert.deepEqual(r.messages.map((m) => m.ruleId), ['942100', '949110']);
  assert.equal(r.status, 403);
  assert.equal(inboundScore(r), 8);
  assert.equal(inboundScore({ ...r, messages: [] }), 0);
  const dir = mkdtempSync(join(tmpdir(), 'usher-audit-'));
  try {
    const file = join(dir, 'audit.log');
    const reader = new AuditLogReader(file);
    assert.deepEqual(reader.read(), [], 'no file yet');
    appendFileSync(file, AUDIT + '\n' + AUDIT.slice(0, 20));
    assert.equal(reader.read().length, 1, 'the half-written line waits');
    appendFileSync(file, AUDIT.slice(20) + '\n');
    assert.equal(reader.read()[0]?.uniqueId, '1.2');
    assert.deepEqual(reader.read(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compareRuns and summarise: verdict and CRS rule-id agreement per request, false positives and misses', () => {
  const entry = (id: string, expected: 'attack' | 'benign'): CorpusEntry => ({ id, category: expected === 'benign' ? 'benign' : 'sqli', expected, method: 'GET', target: '/', headers: [] });
  const result = (id: string, expected: 'attack' | 'benign', o: Partial<Observation>): CorpusResult => ({ entry: entry(id, expected), response: { status: o.status ?? 200, headers: [], body: '' }, observation: { verdict: 'passed', status: 200, rules: [], ...o } });
  const a = [result('a1', 'attack', { verdict: 'blocked', rules: ['10003', '942100', '949110'] }), result('b1', 'benign', {}), result('b2', 'benign', { verdict: 'blocked', rules: ['932150', '949110'] })];
  const b = [result('a1', 'attack', { verdict: 'blocked', rules: ['942100', '949110'] }), result('b1', 'benign', { rules: ['920350'] }), result('b2', 'benign', {})];
  const c = compareRuns(a, b);
  assert.deepEqual([c.total, c.verdictsAgree, c.rulesAgree], [3, 2, 1]);
  assert.deepEqual(c.entries.map((e) => [e.id, e.onlyA, e.onlyB]), [['a1', [], []], ['b1', [], ['920350']], ['b2', ['932150', '949110'], []]]);
  const s = summarise(a);
  assert.deepEqual([s.attacks, s.blocked, s.benign, s.passed], [1, 1, 2, 1]);
  assert.deepEqual(s.falsePositives.map((f) => f.id), ['b2']);
  assert.deepEqual(s.byCategory, { sqli: { total: 1, blocked: 1 }, benign: { total: 2, blocked: 1 } });
  assert.throws(() => compareRuns(a, b.slice(0, 1)), /b1 is missing/);
});
