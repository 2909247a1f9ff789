// The rule engine on small rules of our own (src/waf/rules.ts, transaction.ts, body.ts):
// variables, selectors, counts and exclusions, chains, actions, ctl:, skipAfter, default actions,
// detection-only, macros, captures, memoised transformations and the body processors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { processBody } from '../../src/waf/body.js';
import { Waf } from '../../src/waf/engine.js';
import { SecLangError, parseSecLang } from '../../src/waf/parse.js';
import { compileRules } from '../../src/waf/rules.js';
import { Transaction, type WafRequest } from '../../src/waf/transaction.js';

const PRELUDE = 'SecRuleEngine On\nSecDefaultAction "phase:1,log,pass"\nSecDefaultAction "phase:2,log,pass"\n';

function req(target: string, headers: string[] = [], method = 'GET'): WafRequest {
  return { id: 'req-1', method, target, httpVersion: '1.1', headers: ['Host', 'example.com', ...headers], remoteAddr: '192.0.2.9', remotePort: 4000 };
}

function run(rules: string, r: WafRequest, body?: { text: string; contentType: string }): Transaction {
  const rs = compileRules(parseSecLang(PRELUDE + rules, 't.conf'));
  const tx = new Transaction(rs, r);
  tx.runPhase(1);
  if (body !== undefined) tx.setBody(body.text, processBody(tx.bodyProcessor, body.text, body.contentType, { maxArgs: 100, maxDepth: 10 }));
  tx.runPhase(2);
  return tx;
}

const ids = (tx: Transaction) => tx.matched.map((m) => m.id);

test('request-line variables: method, protocol, URI raw and decoded, filename, basename, query, ARGS', () => {
  const tx = run(
    [
      'SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1"',
      'SecRule REQUEST_PROTOCOL "@streq HTTP/1.1" "id:2,phase:1"',
      'SecRule REQUEST_URI "@streq /a%20b/c.php?x=1&y=%3Cz" "id:3,phase:1"',
      'SecRule REQUEST_FILENAME "@streq /a b/c.php" "id:4,phase:1"',
      'SecRule REQUEST_BASENAME "@streq c.php" "id:5,phase:1"',
      'SecRule QUERY_STRING "@streq x=1&y=%3Cz" "id:6,phase:1"',
      'SecRule ARGS:y "@streq <z" "id:7,phase:1"',
      'SecRule ARGS_GET_NAMES "@streq x" "id:8,phase:1"',
      'SecRule REQUEST_LINE "@beginsWith GET /a%20b" "id:9,phase:1"',
      'SecRule REMOTE_ADDR "@ipMatch 192.0.2.0/24" "id:10,phase:1"',
      'SecRule UNIQUE_ID "@streq req-1" "id:11,phase:1"',
      'SecRule REQUEST_URI_RAW "@streq http://h/x" "id:12,phase:1"',
    ].join('\n'),
    req('/a%20b/c.php?x=1&y=%3Cz'),
  );
  assert.deepEqual(ids(tx), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const abs = run('SecRule REQUEST_URI_RAW "@streq http://h/x" "id:12,phase:1"\nSecRule REQUEST_URI "@streq /x" "id:13,phase:1"', req('http://h/x'));
  assert.deepEqual(ids(abs), [12, 13]);
});

test('headers and cookies with their names: selectors are case-insensitive, /regex/ selectors, & counts, ! exclusions', () => {
  const r = req('/', ['User-Agent', 'curl/8', 'X_Under_Score', 'yes', 'Cookie', 'a=1; __utmz=evil; b=<x>']);
  const tx = run(
    [
      'SecRule REQUEST_HEADERS:user-agent "@beginsWith curl" "id:1,phase:1"',
      'SecRule REQUEST_HEADERS_NAMES "@streq X_Under_Score" "id:2,phase:1"',
      'SecRule &REQUEST_HEADERS:Host "@eq 1" "id:3,phase:1"',
      'SecRule &REQUEST_HEADERS:Missing "@eq 0" "id:4,phase:1"',
      'SecRule REQUEST_COOKIES:/^__utm/ "@streq evil" "id:5,phase:1"',
      'SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/ "@streq evil" "id:6,phase:1"',
      'SecRule REQUEST_COOKIES_NAMES "@streq b" "id:7,phase:1"',
      'SecRule &REQUEST_COOKIES "@eq 3" "id:8,phase:1"',
      'SecRule REQUEST_HEADERS|!REQUEST_HEADERS:User-Agent "@beginsWith curl" "id:9,phase:1"',
    ].join('\n'),
    r,
  );
  assert.deepEqual(ids(tx), [1, 2, 3, 4, 5, 7, 8]);
});

test('setvar with macros, +/- arithmetic, removal; TX selectors; MATCHED_VAR(_NAME) in logdata; rule.id in names', () => {
  const tx = run(
    [
      'SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=2,setvar:tx.who=%{REMOTE_ADDR}"',
      'SecRule ARGS "@rx evil" "id:2,phase:1,pass,msg:\'bad arg\',logdata:\'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}\',setvar:tx.score=+5,setvar:\'tx.%{rule.id}-hit=%{MATCHED_VAR}\'"',
      'SecAction "id:3,phase:1,pass,nolog,setvar:tx.score=-1,setvar:!tx.who"',
      'SecRule TX:score "@eq 6" "id:4,phase:1,msg:\'score %{tx.score}\'"',
      'SecRule TX:2-hit "@streq evilness" "id:5,phase:1"',
      'SecRule &TX:who "@eq 0" "id:6,phase:1"',
      'SecRule TX:/^sco/ "@eq 6" "id:7,phase:1"',
    ].join('\n'),
    req('/?q=evilness'),
  );
  assert.deepEqual(ids(tx), [2, 4, 5, 6, 7]);
  assert.equal(tx.matched[0]?.data, 'ARGS:q=evilness');
  assert.equal(tx.matched[0]?.msg, 'bad arg');
  assert.equal(tx.matched[1]?.msg, 'score 6');
});

test('chains: all links must match; MATCHED_VARS is the parent’s; capture fills TX:0-9 for the next link; actions of every link run', () => {
  const rules = [
    'SecRule ARGS "@rx ^(\\w+)-(\\d+)$" "id:1,phase:1,capture,pass,chain,msg:\'m %{tx.1}\'"',
    '  SecRule TX:2 "@gt 10" "chain,setvar:tx.a=1"',
    '    SecRule MATCHED_VARS "@gt 10" "setvar:tx.b=%{tx.1}"',
    'SecRule TX:b "@streq abc" "id:2,phase:1"',
  ].join('\n');
  const tx = run(rules, req('/?k=abc-42'));
  assert.deepEqual(ids(tx), [1, 2]);
  assert.equal(tx.txValue('a'), '1');
  assert.equal(tx.matched[0]?.msg, 'm abc');
  assert.deepEqual(ids(run(rules, req('/?k=abc-7'))), [], 'the second link fails');
});

test('transformations apply in order, t:none resets; multiMatch tests every stage; negation', () => {
  const tx = run(
    [
      'SecRule ARGS "@streq <script>" "id:1,phase:1,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:lowercase"',
      'SecRule ARGS "@streq %3cscript%3e" "id:2,phase:1,t:lowercase"',
      'SecRule ARGS "@contains %3C" "id:3,phase:1,multiMatch,t:urlDecodeUni"',
      'SecRule ARGS "!@contains zzz" "id:4,phase:1"',
      'SecRule ARGS:q "@eq 15" "id:5,phase:1,t:length"',
    ].join('\n'),
    req('/?q=%253CSCRIPT%253E'),
  );
  // urlDecodeUni on the already-decoded ARGS value: %3CSCRIPT%3E -> <SCRIPT>
  assert.deepEqual(ids(tx), [1, 2, 3, 4]);
});

test('skipAfter jumps to the marker; skip N; SecAction; markers are per phase', () => {
  const tx = run(
    [
      'SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skipAfter:END"',
      'SecAction "id:2,phase:1,pass"',
      'SecMarker END',
      'SecAction "id:3,phase:1,pass,skip:1"',
      'SecAction "id:4,phase:1,pass"',
      'SecAction "id:5,phase:1,pass"',
      'SecAction "id:6,phase:2,pass"',
    ].join('\n'),
    req('/'),
  );
  assert.deepEqual(ids(tx), [3, 5, 6]);
});

test('deny interrupts with its status; block follows SecDefaultAction; DetectionOnly records what it would have done', () => {
  const deny = run('SecRule ARGS "@rx x" "id:1,phase:1,deny,status:406"\nSecAction "id:2,phase:2"', req('/?a=x'));
  assert.deepEqual(deny.interruption, { ruleId: 1, action: 'deny', status: 406 });
  assert.deepEqual(ids(deny), [1], 'nothing runs after the interruption');
  const blockPass = run('SecRule ARGS "@rx x" "id:1,phase:1,block"\nSecAction "id:2,phase:2"', req('/?a=x'));
  assert.equal(blockPass.interruption, undefined);
  const blockDeny = compileRules(parseSecLang('SecDefaultAction "phase:1,log,deny,status:418"\nSecRule ARGS "@rx x" "id:1,phase:1,block"', 't.conf'));
  const t2 = new Transaction(blockDeny, req('/?a=x'));
  t2.runPhase(1);
  assert.deepEqual(t2.interruption, { ruleId: 1, action: 'deny', status: 418 });
  const rs = compileRules(parseSecLang('SecRuleEngine DetectionOnly\nSecRule ARGS "@rx x" "id:1,phase:1,deny"\nSecAction "id:2,phase:1"', 't.conf'));
  const t3 = new Transaction(rs, req('/?a=x'));
  t3.runPhase(1);
  assert.equal(t3.interruption, undefined);
  assert.equal(t3.wouldInterrupt?.ruleId, 1);
  assert.deepEqual(ids(t3), [1, 2]);
});

test('ctl: ruleRemoveById / ByTag / TargetById / TargetByTag and ruleEngine apply to the rest of the request', () => {
  const tx = run(
    [
      'SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=10-11,ctl:ruleRemoveByTag=attack-x,ctl:ruleRemoveTargetById=20;ARGS:pw,ctl:ruleRemoveTargetByTag=t-y;ARGS_NAMES"',
      'SecRule ARGS "@rx ." "id:10,phase:1"',
      'SecRule ARGS "@rx ." "id:12,phase:1,tag:\'attack-x\'"',
      'SecRule ARGS "@rx secret" "id:20,phase:1"',
      'SecRule ARGS "@rx user" "id:21,phase:1"',
      'SecRule ARGS_NAMES "@rx pw" "id:22,phase:1,tag:\'t-y\'"',
      'SecAction "id:30,phase:2,pass,ctl:ruleEngine=Off"',
      'SecAction "id:31,phase:2,pass"',
    ].join('\n'),
    req('/?pw=secret&u=user'),
  );
  assert.deepEqual(ids(tx), [21, 30]);
});

test('static SecRuleRemoveById/ByTag and SecRuleUpdateTargetById/ByTag', () => {
  const tx = run(
    [
      'SecRule ARGS "@rx a" "id:1,phase:1"',
      'SecRule ARGS "@rx a" "id:2,phase:1,tag:\'gone\'"',
      'SecRule ARGS "@rx a" "id:3,phase:1,tag:\'narrow\'"',
      'SecRule ARGS "@rx a" "id:4,phase:1"',
      'SecRule REQUEST_METHOD "@rx a" "id:5,phase:1"',
      'SecRuleRemoveById 1',
      'SecRuleRemoveByTag gone',
      'SecRuleUpdateTargetByTag narrow "!ARGS:x"',
      'SecRuleUpdateTargetById 4 "!ARGS"',
      'SecRuleUpdateTargetById 5 "ARGS:x"',
    ].join('\n'),
    req('/?x=a'),
  );
  assert.deepEqual(ids(tx), [5]);
});

test('nolog rules are not reported; log wins over the default', () => {
  const tx = run('SecAction "id:1,phase:1,nolog"\nSecAction "id:2,phase:1"', req('/'));
  assert.deepEqual(ids(tx), [2]);
});

test('transformation results are memoised per chain and value within a request', () => {
  const rs = compileRules(parseSecLang(PRELUDE + 'SecRule ARGS "@rx x" "id:1,phase:1,t:lowercase"\nSecRule ARGS "@rx y" "id:2,phase:1,t:lowercase"', 't.conf'));
  const tx = new Transaction(rs, req('/?a=ABC'));
  tx.runPhase(1);
  const chain = rs.rules.get(1)?.transforms;
  assert.ok(chain !== undefined);
  assert.equal(chain.id, rs.rules.get(2)?.transforms.id, 'equal chains share an id');
  assert.equal(tx.transform(chain, 'ABC'), 'abc');
});

test('bodies: URL-encoded ARGS_POST, JSON names, multipart fields, files and part headers; errors set REQBODY_ERROR', () => {
  const form = run('SecRule ARGS_POST:b "@streq 2 3" "id:1,phase:2"\nSecRule ARGS:a "@streq 1" "id:2,phase:2"\nSecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:3,phase:1"\nSecRule REQUEST_BODY "@streq a=1&b=2+3" "id:4,phase:2"', req('/', ['Content-Type', 'application/x-www-form-urlencoded'], 'POST'), { text: 'a=1&b=2+3', contentType: 'application/x-www-form-urlencoded' });
  assert.deepEqual(ids(form), [3, 1, 2, 4]);
  const json = run('SecRule ARGS:user.roles.1 "@streq admin" "id:1,phase:2"\nSecRule ARGS_NAMES "@streq id" "id:2,phase:2"\nSecRule REQBODY_ERROR "@eq 0" "id:3,phase:2"', req('/', ['Content-Type', 'application/json'], 'POST'), { text: '{"id":5,"user":{"roles":["a","admin"]}}', contentType: 'application/json' });
  assert.deepEqual(ids(json), [1, 2, 3]);
  const bad = run('SecRule REQBODY_ERROR "!@eq 0" "id:1,phase:2,logdata:\'%{REQBODY_ERROR_MSG}\'"', req('/', ['Content-Type', 'application/json'], 'POST'), { text: '{"id":', contentType: 'application/json' });
  assert.deepEqual(ids(bad), [1]);
  assert.match(bad.matched[0]?.data ?? '', /^JSON parsing error/);
  const ct = 'multipart/form-data; boundary=XyZ';
  const mp = ['--XyZ', 'Content-Disposition: form-data; name="f"', '', 'field value', '--XyZ', 'Content-Disposition: form-data; name="up"; filename="a.php"', 'Content-Type: text/plain', '', '<?php ?>', '--XyZ--', ''].join('\r\n');
  const m = run(
    [
      'SecRule ARGS:f "@streq field value" "id:1,phase:2"',
      'SecRule FILES "@endsWith .php" "id:2,phase:2"',
      'SecRule FILES_NAMES "@streq up" "id:3,phase:2"',
      'SecRule MULTIPART_PART_HEADERS:up "@rx ^content-type\\s*:\\s*text/plain$" "id:4,phase:2,t:lowercase"',
      'SecRule &MULTIPART_PART_HEADERS "@eq 3" "id:5,phase:2"',
      'SecRule MULTIPART_STRICT_ERROR "@eq 0" "id:6,phase:2"',
      'SecRule FILES_SIZES:up "@eq 8" "id:7,phase:2"',
    ].join('\n'),
    req('/', ['Content-Type', ct], 'POST'),
    { text: mp, contentType: ct },
  );
  assert.deepEqual(ids(m), [1, 2, 3, 4, 5, 6, 7]);
  const cut = processBody('MULTIPART', '--XyZ\r\nContent-Disposition: form-data; name="f"\r\n\r\nno end', ct, { maxArgs: 10, maxDepth: 5 });
  assert.equal(cut.error, 'Multipart: final boundary missing');
  assert.equal(processBody('URLENCODED', 'a=1&b=2&c=3', undefined, { maxArgs: 2, maxDepth: 5 }).error, 'URLENCODED: more than 2 arguments');
  assert.match(processBody('JSON', '[[[[1]]]]', undefined, { maxArgs: 10, maxDepth: 3 }).error ?? '', /nesting deeper than 3/);
});

test('what cannot run is skipped and listed with id, file:line and reason; a malformed rule is an error with file:line', () => {
  const rs = compileRules(parseSecLang(PRELUDE + 'SecRule REMOTE_ADDR "@geoLookup" "id:7,phase:2,chain"\n  SecRule ARGS "@rx x" "t:none"\nSecRule NO_SUCH_VAR "@rx x" "id:8,phase:2"\nSecRule ARGS "@rx x" "id:9,phase:2"', 't.conf'));
  assert.deepEqual(
    rs.skipped.map((s) => [s.id, `${s.origin.file}:${s.origin.line}`, s.reason]),
    [
      [7, 't.conf:4', '@geoLookup needs a GeoIP database (SecGeoLookupDb), which usher does not load'],
      [8, 't.conf:6', 'variable NO_SUCH_VAR is not supported'],
    ],
  );
  assert.deepEqual([...rs.rules.keys()], [9]);
  assert.throws(() => compileRules(parseSecLang('\nSecRule ARGS "@rx x" "phase:2"', 'e.conf')), (err: unknown) => err instanceof SecLangError && /^e\.conf:2: SecRule needs an id/.test(err.message));
  assert.throws(() => compileRules(parseSecLang('SecRule ARGS "@rx x" "id:1,phase:9"', 'e.conf')), /e\.conf:1: phase must be 1-5/);
  assert.throws(() => compileRules(parseSecLang('SecBogus On', 'e.conf')), /e\.conf:1: unknown directive SecBogus/);
});

test('the time budget stops evaluation between rules (a budget of 0 ends it at the first check)', () => {
  const many = Array.from({ length: 40 }, (_, i) => `SecAction "id:${i + 1},phase:1,pass"`).join('\n');
  const rs = compileRules(parseSecLang(PRELUDE + many, 't.conf'));
  const tx = new Transaction(rs, req('/'));
  tx.setBudget(0);
  tx.runPhase(1);
  assert.equal(tx.budgetExceeded, true);
  assert.ok(tx.matched.length < 40, `${tx.matched.length} of 40 rules ran`);
  tx.runPhase(2);
  assert.ok(tx.matched.length < 40, 'nothing runs after the budget is gone');
  const unbounded = new Transaction(rs, req('/'));
  unbounded.runPhase(1);
  assert.equal(unbounded.budgetExceeded, false);
  assert.equal(unbounded.matched.length, 40);
});

test('a catastrophic pattern on a hostile input finishes: a loaded WAF turns on V8’s linear-time fallback', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'waf-redos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'redos.conf'), 'SecRule ARGS "@rx ^(a+)+$" "id:1,phase:1,deny"\n');
  const waf = new Waf({ crs: join(dir, 'redos.conf'), paranoiaLevel: 1, inboundThreshold: 5, outboundThreshold: 4, mode: 'block', requestBodyLimit: 1024 });
  // 2^40 backtracking steps without the fallback: this test would time out
  const tx = waf.transaction(req(`/?q=${'a'.repeat(40)}b`));
  tx.runPhase(1);
  assert.equal(tx.interruption, undefined);
  const hit = waf.transaction(req(`/?q=${'a'.repeat(40)}`));
  hit.runPhase(1);
  assert.equal(hit.interruption?.ruleId, 1);
});

test('REQBODY_PROCESSOR follows ctl:requestBodyProcessor within the phase (not cached)', () => {
  const tx = run(
    [
      'SecRule REQBODY_PROCESSOR "!@rx (?:URLENCODED|JSON)" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED"',
      'SecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:2,phase:1"',
    ].join('\n'),
    req('/', ['Content-Type', 'text/plain'], 'POST'),
  );
  assert.deepEqual(ids(tx), [2]);
});

test('a rule a chained rule follows sets its variables on each of its matches, before the chained rule runs (ModSecurity v3; CRS 920450/920440)', () => {
  const rules = [
    `SecAction "id:1,phase:1,pass,nolog,setvar:'tx.restricted=/accept-charset/ /proxy/',setvar:'tx.bad_ext=.bak/ .sql/'"`,
    // one TX variable per header name, each from that match's capture; the chained rule reads them all
    `SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:2,phase:1,capture,t:none,t:lowercase,setvar:'tx.header_name_%{tx.0}=/%{tx.0}/',chain"`,
    `  SecRule TX:/^header_name_/ "@within %{tx.restricted}" "setvar:tx.hits=+1"`,
    `SecRule REQUEST_BASENAME "@rx \\.([^.]+)$" "id:3,phase:1,capture,t:none,setvar:'tx.extension=.%{tx.1}/',chain"`,
    `  SecRule TX:EXTENSION "@within %{tx.bad_ext}" "t:none,t:lowercase"`,
    // the chain fails, yet the first rule's setvar ran (and a lone rule's runs only on a match)
    `SecRule REQUEST_METHOD "@streq GET" "id:4,phase:1,setvar:tx.first=1,chain"`,
    `  SecRule REQUEST_METHOD "@streq POST" "setvar:tx.second=1"`,
  ].join('\n');
  const tx = run(rules, req('/backup/db.sql', ['Proxy', 'http://evil', 'Accept', '*/*']));
  assert.deepEqual(ids(tx), [2, 3]);
  assert.equal(tx.txValue('header_name_proxy'), '/proxy/');
  assert.equal(tx.txValue('header_name_accept'), '/accept/');
  assert.equal(tx.txValue('header_name_host'), '/host/');
  assert.equal(tx.txValue('hits'), '1', 'the chained rule matched one variable (header_name_proxy)');
  assert.equal(tx.txValue('first'), '1');
  assert.equal(tx.txValue('second'), undefined);
  const clean = run(rules, req('/index.html', ['Accept', '*/*']));
  assert.deepEqual(ids(clean), []);
});

test('@rx with a macro expands it per call (CRS 920480: ^%{tx.allowed_request_content_type_charset}$)', () => {
  const rules = [
    `SecAction "id:1,phase:1,pass,nolog,setvar:'tx.charsets=utf-8|iso-8859-1'"`,
    `SecRule REQUEST_HEADERS:Content-Type "@rx charset\\s*=\\s*[\\"']?([^;\\"'\\s]+)" "id:2,phase:1,capture,t:none,t:lowercase,chain"`,
    `  SecRule TX:1 "!@rx ^%{tx.charsets}$" "t:none"`,
    `SecRule REQUEST_HEADERS:X-Pattern "@rx ^%{tx.nothing}(" "id:3,phase:1"`,
  ].join('\n');
  assert.deepEqual(ids(run(rules, req('/', ['Content-Type', 'text/html; charset=UTF-8']))), []);
  assert.deepEqual(ids(run(rules, req('/', ['Content-Type', 'text/html; charset=ISO-8859-1']))), []);
  assert.deepEqual(ids(run(rules, req('/', ['Content-Type', 'text/html; charset=utf-7']))), [2]);
  // an expansion that is no valid pattern matches nothing
  assert.deepEqual(ids(run(rules, req('/', ['X-Pattern', 'a(']))), []);
});

test('setvar runs once per matched variable, as ModSecurity v3 does (CRS 942432 on two arguments scores twice)', () => {
  const rules = [
    `SecRule ARGS "@rx -" "id:1,phase:1,setvar:'tx.score=+3'"`,
    `SecRule ARGS:from "@rx -" "id:2,phase:1,setvar:'tx.once=+3'"`,
    `SecRule &ARGS "@eq 2" "id:3,phase:1,setvar:'tx.count=+1'"`,
  ].join('\n');
  const tx = run(rules, req('/events?from=2026-12-01&to=2026-12-31&city=Berlin'));
  assert.deepEqual(ids(tx), [1, 2]);
  assert.equal(tx.txValue('score'), '6');
  assert.equal(tx.txValue('once'), '3');
  assert.equal(tx.txValue('count'), undefined);
  assert.equal(run(rules, req('/events?from=2026-12-01&city=Berlin')).txValue('count'), '1');
});

test('rule files are read as bytes, as ModSecurity matches them: a UTF-8 character in a class is its bytes (CRS 942432 and ’)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'waf-bytes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'bytes.conf'), 'SecRule ARGS "@rx [´’‘]" "id:1,phase:1,deny"\nSecRule ARGS "@rx caf\u00e9" "id:2,phase:1,deny"\n', 'utf8');
  const waf = new Waf({ crs: join(dir, 'bytes.conf'), paranoiaLevel: 1, inboundThreshold: 5, outboundThreshold: 4, mode: 'block', requestBodyLimit: 1024 });
  const check = (target: string): number | undefined => {
    const tx = waf.transaction(req(target));
    tx.runPhase(1);
    return tx.interruption?.ruleId;
  };
  // ’ is E2 80 99: each byte is in the class, so a Cyrillic letter (D0 9C) does not match but D0 99 does
  assert.equal(check('/?q=%E2%80%99'), 1);
  assert.equal(check('/?q=%D0%99'), 1);
  assert.equal(check('/?q=%D0%9C'), undefined);
  assert.equal(check('/?q=plain'), undefined);
  // a UTF-8 literal matches the same bytes in a request
  assert.equal(check('/?q=caf%C3%A9'), 2);
});

test('REQUEST_BASENAME and REQUEST_BODY are empty, not absent, as v3 anchored variables: a negated operator matches (CRS 920200 on "/")', () => {
  const rules = [
    'SecRule REQUEST_BASENAME "!@endsWith .pdf" "id:1,phase:1"',
    'SecRule &REQUEST_BASENAME "@eq 1" "id:2,phase:1"',
    'SecRule REQUEST_BASENAME "@streq " "id:3,phase:1"',
    'SecRule &REQUEST_BODY "@eq 1" "id:4,phase:2"',
    'SecRule REQUEST_BODY "!@rx ." "id:5,phase:2"',
  ].join('\n');
  assert.deepEqual(ids(run(rules, req('/dir/'))), [1, 2, 3, 4, 5]);
  assert.deepEqual(ids(run(rules, req('/'))), [1, 2, 3, 4, 5]);
  // a basename that ends in .pdf fails the negation and is not empty
  assert.deepEqual(ids(run(rules, req('/a/doc.pdf'))), [2, 4, 5]);
  // with a body, REQUEST_BODY is the body (whatever the processor)
  assert.deepEqual(ids(run(rules, req('/x', ['Content-Type', 'text/plain'], 'POST'), { text: 'hello', contentType: 'text/plain' })), [1, 2, 4]);
});
