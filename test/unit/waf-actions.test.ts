// The disruptive actions as ModSecurity v3 runs them (issue 14), on small rules of our own:
// deny with status:, drop, redirect:URL (macros expanded; 302 unless status: says 301-307),
// allow / allow:phase / allow:request, pass, block resolving to the phase's SecDefaultAction
// (with its status: and URL), and DetectionOnly (SecRuleEngine or ctl:ruleEngine), where no
// disruptive action runs and the one that would have is recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SecLangError, parseSecLang } from '../../src/waf/parse.js';
import { compileRules } from '../../src/waf/rules.js';
import { Transaction, type WafRequest } from '../../src/waf/transaction.js';

const PRELUDE = 'SecRuleEngine On\nSecDefaultAction "phase:1,log,pass"\nSecDefaultAction "phase:2,log,pass"\n';

function req(target: string): WafRequest {
  return { id: 'req-7', method: 'GET', target, httpVersion: '1.1', headers: ['Host', 'shop.example', 'User-Agent', 't'], remoteAddr: '192.0.2.9', remotePort: 4000 };
}

/** Runs phases 1-3 of `rules` (after PRELUDE unless `bare`) on `target`. */
function run(rules: string, target = '/?a=x', bare = false): Transaction {
  const tx = new Transaction(compileRules(parseSecLang((bare ? '' : PRELUDE) + rules, 't.conf')), req(target));
  for (const p of [1, 2, 3]) tx.runPhase(p);
  return tx;
}

const ids = (tx: Transaction): number[] => tx.matched.map((m) => m.id);

test('deny: the rule’s status:, else 403; nothing runs after it; the action is deny', () => {
  const teapot = run('SecRule ARGS:a "@streq x" "id:1,phase:1,deny,status:418"\nSecAction "id:2,phase:1"\nSecAction "id:3,phase:2"');
  assert.deepEqual(teapot.interruption, { ruleId: 1, action: 'deny', status: 418 });
  assert.deepEqual(ids(teapot), [1]);
  assert.equal(teapot.action, 'deny');
  const plain = run('SecRule ARGS:a "@streq x" "id:1,phase:2,deny"');
  assert.deepEqual(plain.interruption, { ruleId: 1, action: 'deny', status: 403 });
  const miss = run('SecRule ARGS:a "@streq y" "id:1,phase:1,deny,status:418"');
  assert.equal(miss.interruption, undefined);
  assert.equal(miss.action, 'pass');
});

test('drop: interrupts like deny (v3 records 403, or status:) and is reported as drop', () => {
  const tx = run('SecRule ARGS:a "@streq x" "id:5,phase:1,drop"\nSecAction "id:6,phase:2"');
  assert.deepEqual(tx.interruption, { ruleId: 5, action: 'drop', status: 403 });
  assert.deepEqual(ids(tx), [5]);
  assert.equal(tx.action, 'drop');
});

test('redirect: 302 with the URL’s macros expanded (%{rule.*} empty, as v3 has it); status: 301-307 is kept, any other is not', () => {
  const tx = run(`SecRule ARGS:a "@streq x" "id:7,phase:1,redirect:'https://%{request_headers.host}/blocked?rule=%{rule.id}&v=%{matched_var}'"\nSecAction "id:8,phase:2"`);
  assert.deepEqual(tx.interruption, { ruleId: 7, action: 'redirect', status: 302, url: 'https://shop.example/blocked?rule=&v=x' });
  assert.deepEqual(ids(tx), [7]);
  assert.equal(tx.action, 'redirect');
  assert.equal(run('SecRule ARGS:a "@streq x" "id:7,phase:1,status:301,redirect:/moved"').interruption?.status, 301);
  assert.equal(run('SecRule ARGS:a "@streq x" "id:7,phase:1,status:307,redirect:/moved"').interruption?.status, 307);
  assert.equal(run('SecRule ARGS:a "@streq x" "id:7,phase:1,status:403,redirect:/moved"').interruption?.status, 302);
});

test('allow: the rest of the transaction passes (a later deny in this phase or the next does not fire)', () => {
  const tx = run('SecRule ARGS:a "@streq x" "id:10,phase:1,allow"\nSecRule ARGS:a "@streq x" "id:11,phase:1,deny"\nSecRule ARGS:a "@streq x" "id:12,phase:2,deny"\nSecAction "id:13,phase:3"');
  assert.equal(tx.interruption, undefined);
  assert.deepEqual(ids(tx), [10]);
  assert.equal(tx.action, 'allow');
  assert.deepEqual(tx.allowedBy, { ruleId: 10, scope: 'all' });
  // a rule before the allow still denies
  const first = run('SecRule ARGS:a "@streq x" "id:11,phase:1,deny,status:418"\nSecRule ARGS:a "@streq x" "id:10,phase:1,allow"');
  assert.equal(first.interruption?.status, 418);
});

test('allow:phase ends this phase only; allow:request ends phases 1-2, the response phases run', () => {
  const phase = run('SecRule ARGS:a "@streq x" "id:20,phase:1,allow:phase"\nSecRule ARGS:a "@streq x" "id:21,phase:1,deny"\nSecRule ARGS:a "@streq x" "id:22,phase:2,deny,status:418"');
  assert.deepEqual(ids(phase), [20, 22]);
  assert.deepEqual(phase.interruption, { ruleId: 22, action: 'deny', status: 418 });
  assert.deepEqual(phase.allowedBy, { ruleId: 20, scope: 'phase' });
  const request = run('SecRule ARGS:a "@streq x" "id:30,phase:1,allow:request"\nSecRule ARGS:a "@streq x" "id:31,phase:1,deny"\nSecRule ARGS:a "@streq x" "id:32,phase:2,deny"\nSecRule ARGS:a "@streq x" "id:33,phase:3,deny,status:418"');
  assert.deepEqual(ids(request), [30, 33]);
  assert.deepEqual(request.interruption, { ruleId: 33, action: 'deny', status: 418 });
  assert.deepEqual(request.allowedBy, { ruleId: 30, scope: 'request' });
});

test('pass: the rule logs and evaluation goes on', () => {
  const tx = run('SecRule ARGS:a "@streq x" "id:40,phase:1,pass"\nSecAction "id:41,phase:1"\nSecAction "id:42,phase:2"');
  assert.deepEqual(ids(tx), [40, 41, 42]);
  assert.equal(tx.interruption, undefined);
  assert.equal(tx.action, 'pass');
});

test('block is the phase’s SecDefaultAction: pass (the CRS setup), deny with its status (the rule’s status: first), redirect, drop', () => {
  const crsLike = run('SecRule ARGS:a "@streq x" "id:50,phase:2,block"\nSecAction "id:51,phase:2"');
  assert.deepEqual(ids(crsLike), [50, 51]);
  assert.equal(crsLike.interruption, undefined);
  const deny = run('SecDefaultAction "phase:2,log,deny,status:418"\nSecRule ARGS:a "@streq x" "id:52,phase:2,block"', '/?a=x', true);
  assert.deepEqual(deny.interruption, { ruleId: 52, action: 'deny', status: 418 });
  const own = run('SecDefaultAction "phase:2,log,deny,status:418"\nSecRule ARGS:a "@streq x" "id:53,phase:2,block,status:429"', '/?a=x', true);
  assert.deepEqual(own.interruption, { ruleId: 53, action: 'deny', status: 429 });
  const redirect = run(`SecDefaultAction "phase:1,log,redirect:'http://%{request_headers.host}/'"\nSecRule ARGS:a "@streq x" "id:54,phase:1,block"`, '/?a=x', true);
  assert.deepEqual(redirect.interruption, { ruleId: 54, action: 'redirect', status: 302, url: 'http://shop.example/' });
  const drop = run('SecDefaultAction "phase:1,log,drop"\nSecRule ARGS:a "@streq x" "id:55,phase:1,block"', '/?a=x', true);
  assert.equal(drop.interruption?.action, 'drop');
  // block in a phase without a SecDefaultAction passes
  const none = run('SecDefaultAction "phase:1,log,deny"\nSecRule ARGS:a "@streq x" "id:56,phase:2,block"', '/?a=x', true);
  assert.equal(none.interruption, undefined);
});

test('DetectionOnly (SecRuleEngine or ctl:ruleEngine) runs no disruptive action: it records the one that would have', () => {
  for (const [what, rules] of [
    ['SecRuleEngine DetectionOnly', 'SecRuleEngine DetectionOnly\n'],
    ['ctl:ruleEngine=DetectionOnly', 'SecAction "id:60,phase:1,nolog,ctl:ruleEngine=DetectionOnly"\n'],
  ] as const) {
    for (const [action, expected] of [
      ['deny,status:418', 'deny'],
      ['drop', 'drop'],
      ["redirect:'/x'", 'redirect'],
    ] as const) {
      const tx = run(`${rules}SecRule ARGS:a "@streq x" "id:61,phase:1,${action}"\nSecAction "id:62,phase:2"`);
      assert.equal(tx.interruption, undefined, `${what}, ${action}`);
      assert.equal(tx.wouldInterrupt?.action, expected, `${what}, ${action}`);
      assert.deepEqual(ids(tx), [61, 62], `${what}, ${action}: evaluation goes on`);
      assert.equal(tx.action, 'pass', `${what}, ${action}`);
    }
    const allow = run(`${rules}SecRule ARGS:a "@streq x" "id:63,phase:1,allow"\nSecAction "id:64,phase:2"`);
    assert.deepEqual(ids(allow), [63, 64], `${what}: allow does not stop evaluation`);
    assert.equal(allow.allowedBy, undefined);
  }
});

test('malformed disruptive arguments are errors with file:line', () => {
  for (const [rule, message] of [
    ['SecRule ARGS "@rx x" "id:1,phase:1,allow:forever"', /allow takes phase or request/],
    ['SecRule ARGS "@rx x" "id:1,phase:1,redirect"', /redirect needs a URL/],
    ['SecRule ARGS "@rx x" "id:1,phase:1,deny,status:abc"', /status must be an HTTP status/],
    ['SecRule ARGS "@rx x" "id:1,phase:1,deny,status:101"', /status must be an HTTP status usher can answer \(200-599\), got "101"/],
  ] as const) {
    assert.throws(() => compileRules(parseSecLang(`SecRuleEngine On\n${rule}`, 'extra.conf')), (err: unknown) => err instanceof SecLangError && /extra\.conf:2/.test(err.message) && message.test(err.message), rule);
  }
});

test('a rule’s disruptive action is resolved once, when the rule set is compiled: block is stored as the phase’s SecDefaultAction (with its status: and URL)', () => {
  const rs = compileRules(
    parseSecLang(
      [
        'SecRuleEngine On',
        'SecDefaultAction "phase:1,log,redirect:/blocked"',
        'SecDefaultAction "phase:2,log,deny,status:418"',
        'SecRule ARGS:a "@streq x" "id:60,phase:2,block"',
        'SecRule ARGS:a "@streq x" "id:61,phase:2,block,status:429"',
        'SecRule ARGS:a "@streq x" "id:62,phase:1,block"',
        'SecRule ARGS:a "@streq x" "id:63,phase:3,block"',
        'SecRule ARGS:a "@streq x" "id:64,phase:2,pass"',
      ].join('\n'),
      't.conf',
    ),
  );
  const of = (id: number): [string | undefined, number | undefined, boolean] => {
    const r = rs.rules.get(id);
    return [r?.disruptive, r?.status, r?.redirect !== undefined];
  };
  assert.deepEqual(of(60), ['deny', 418, false]);
  assert.deepEqual(of(61), ['deny', 429, false]);
  assert.deepEqual(of(62), ['redirect', undefined, true]);
  assert.deepEqual(of(63), ['pass', undefined, false]); // no SecDefaultAction for phase 3
  assert.equal(of(64)[0], 'pass');
  assert.equal([...rs.rules.values()].some((r) => r.disruptive === 'block'), false);
});
