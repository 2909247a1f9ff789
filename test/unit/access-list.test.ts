// The access list's matcher and config section: first match wins, IPv4 / IPv6 / IPv4-mapped,
// the default, and the config errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../src/config/index.js';
import { normalizeAccess } from '../../src/filters/access/config.js';
import { AccessList } from '../../src/filters/access/matcher.js';
import { brief } from '../helpers/issues.js';

const decide = (list: AccessList, ip: string) => {
  const d = list.decide(ip);
  return `${d.allow ? 'allow' : 'deny'}: ${d.rule}`;
};

test('first match wins; the default follows the kind of list unless given', () => {
  const l = new AccessList(normalizeAccess({ rules: [{ deny: '10.9.0.0/16' }, { allow: ['10.0.0.0/8', '2001:db8::/32'] }] }));
  assert.equal(decide(l, '10.9.1.2'), 'deny: deny 10.9.0.0/16');
  assert.equal(decide(l, '10.1.2.3'), 'allow: allow 10.0.0.0/8');
  assert.equal(decide(l, '192.0.2.1'), 'deny: default deny');
  assert.equal(decide(l, '2001:db8:0:1::5'), 'allow: allow 2001:db8::/32');
  assert.equal(decide(l, '2001:db9::5'), 'deny: default deny');
  assert.equal(decide(new AccessList(normalizeAccess({ deny: '192.0.2.0/24' })), '198.51.100.1'), 'allow: default allow');
  assert.equal(decide(new AccessList(normalizeAccess({ allow: '192.0.2.0/24', default: 'allow' })), '198.51.100.1'), 'allow: default allow');
  assert.equal(decide(new AccessList(normalizeAccess({ default: 'deny' })), '127.0.0.1'), 'deny: default deny');
});

test('IPv4-mapped IPv6 clients match IPv4 rules only; IPv4-mapped rules are IPv4 rules', () => {
  const v4 = new AccessList(normalizeAccess({ deny: '127.0.0.0/8' }));
  assert.equal(decide(v4, '::ffff:127.0.0.1'), 'deny: deny 127.0.0.0/8');
  assert.equal(decide(v4, '::FFFF:7f00:1'), 'deny: deny 127.0.0.0/8', 'the hex form too');
  assert.equal(decide(v4, '::1'), 'allow: default allow');
  const v6all = new AccessList(normalizeAccess({ deny: '::/0' }));
  assert.equal(decide(v6all, '::ffff:127.0.0.1'), 'allow: default allow');
  assert.equal(decide(v6all, '1.2.3.4'), 'allow: default allow');
  assert.equal(decide(v6all, 'fe80::1%eth0'), 'deny: deny ::/0');
  const mapped = new AccessList(normalizeAccess({ deny: ['::ffff:10.0.0.0/104', '::ffff:192.0.2.7'] }));
  assert.equal(decide(mapped, '10.200.0.1'), 'deny: deny 10.0.0.0/8');
  assert.equal(decide(mapped, '192.0.2.7'), 'deny: deny 192.0.2.7/32');
  assert.equal(decide(mapped, '192.0.2.8'), 'allow: default allow');
});

test('prefix edges and what is not an address', () => {
  const l = new AccessList(normalizeAccess({ allow: ['0.0.0.0/0', '2001:db8:8000::/33', '::1'] }));
  assert.equal(decide(l, '255.255.255.255'), 'allow: allow 0.0.0.0/0');
  assert.equal(decide(l, '2001:db8:8000::1'), 'allow: allow 2001:db8:8000::/33');
  assert.equal(decide(l, '2001:db8:7fff::1'), 'deny: default deny');
  assert.equal(decide(l, '::1'), 'allow: allow ::1/128');
  assert.equal(decide(l, '[::1]:443'), 'allow: allow ::1/128');
  assert.equal(decide(l, '1.2.3.4:80'), 'allow: allow 0.0.0.0/0');
  for (const bad of ['', 'unknown', '1.2.3', '01.2.3.4', '1.2.3.256', '[::1', '::1:80x']) assert.equal(decide(l, bad), 'deny: not an IP address (denied)', bad);
});

test('access config errors point at the spot and say what to write', () => {
  const r = loadConfigText(
    `listeners:
  - address: 8080
    access: { allow: [10.0.0.0/8], deny: [10.9.0.0/16] }
  - address: 8081
    access: {}
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
  - upstream: app
    access:
      rules: [{ allow: 10.0.0.0/33 }, { allow: 10.0.0.1, deny: 10.0.0.2 }, {}]
  - upstream: app
    access: { rules: [{ deny: nope }], allow: 1.2.3.4 }
`,
    'usher.yaml',
    {},
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(brief(r.errors), [
    [3, 36, 'listeners[0].access.deny', 'with both "allow" and "deny" the order matters: write them as "rules" (the first match wins)', 'rules: [{ deny: "10.9.0.0/16" }, { allow: "10.0.0.0/8" }]'],
    [5, 13, 'listeners[1].access', 'an access list needs "allow", "deny" or "rules" (or a "default")'],
    [11, 24, 'routes[0].access.rules[0].allow', 'expected an IP address or CIDR range like "10.0.0.0/8" or "::1/128", got "10.0.0.0/33"', 'the prefix length after "/" must be 0..32 for an IPv4 address'],
    [11, 39, 'routes[0].access.rules[1]', 'a rule takes exactly one of "allow" or "deny"'],
    [11, 76, 'routes[0].access.rules[2]', 'a rule takes exactly one of "allow" or "deny"'],
    [13, 15, 'routes[1].access.rules', '"rules" replaces "allow" and "deny": write every rule under "rules"'],
    [13, 31, 'routes[1].access.rules[0].deny', 'expected an IP address or CIDR range like "10.0.0.0/8" or "::1/128", got "nope"'],
  ]);
});

test('the bounded cache of recent addresses never changes a decision', () => {
  const l = new AccessList(normalizeAccess({ rules: [{ deny: '10.0.128.0/17' }, { allow: '10.0.0.0/8' }] }));
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10_000; i++) {
      const ip = `10.0.${i % 256}.${(i >> 8) & 255}`;
      assert.equal(l.decide(ip).allow, i % 256 < 128, ip);
    }
  }
});
