import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Balancer, BalancerEndpoint, BalancerOptions } from '../../src/upstream/balancer.js';
import { BALANCER_FACTORIES } from '../../src/upstream/balancers/index.js';
import { hash } from '../../src/upstream/balancers/hash/index.js';
import { buildTable } from '../../src/upstream/balancers/hash/maglev.js';
import { leastConn } from '../../src/upstream/balancers/least-conn/index.js';
import { leastRequest } from '../../src/upstream/balancers/least-request/index.js';
import { roundRobin } from '../../src/upstream/balancers/round-robin/index.js';
import { sticky, stickyToken } from '../../src/upstream/balancers/sticky/index.js';
import { seeded } from '../helpers/rng.js';

// The conformance suite every balancer must pass (architecture guide, habit 6). Every balancer
// registered in BALANCER_FACTORIES (what `balance:` accepts) is run through it.
const BALANCERS: Record<string, <E extends BalancerEndpoint>(e: readonly E[], o?: BalancerOptions) => Balancer<E>> = { ...BALANCER_FACTORIES };

class Ep implements BalancerEndpoint {
  up = true;
  inflight = 0;
  constructor(
    readonly id: string,
    readonly weight = 1,
  ) {}
  available(): boolean {
    return this.up;
  }
}

test('every balance: name the config accepts has a balancer', () => {
  assert.deepEqual(Object.keys(BALANCERS).sort(), ['hash', 'least_conn', 'least_request', 'random', 'round_robin', 'sticky']);
});

for (const [name, make] of Object.entries(BALANCERS)) {
  test(`${name}: honours weights over many picks`, () => {
    const eps = [new Ep('a', 5), new Ep('b', 1), new Ep('c', 2)];
    const b = make(eps, { random: seeded(1) });
    const counts = new Map<string, number>();
    const n = 16000;
    for (let i = 0; i < n; i++) {
      // Distinct keys for hash; garbage cookie tokens for sticky; ignored by the others.
      const e = b.pick({ attempt: 0, hashKey: `key-${i}` })!;
      counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
    }
    for (const e of eps) {
      const share = (counts.get(e.id) ?? 0) / n;
      assert.ok(Math.abs(share - e.weight / 8) < 0.02, `${e.id}: share ${share} vs ${e.weight / 8}`);
    }
  });

  test(`${name}: never picks an unavailable or excluded endpoint`, () => {
    const eps = [new Ep('a'), new Ep('b'), new Ep('c')];
    eps[1]!.up = false;
    const b = make(eps, { random: seeded(2) });
    const exclude = new Set([eps[0]!]);
    for (let i = 0; i < 200; i++) {
      assert.notEqual(b.pick({ attempt: 0, hashKey: `k${i}` })!.id, 'b');
      assert.equal(b.pick({ attempt: 1, exclude, hashKey: `k${i}` })!.id, 'c');
    }
  });

  test(`${name}: returns undefined when nothing is available`, () => {
    assert.equal(make([] as Ep[]).pick({ attempt: 0, hashKey: 'k' }), undefined);
    const eps = [new Ep('a'), new Ep('b')];
    for (const e of eps) e.up = false;
    assert.equal(make(eps).pick({ attempt: 0, hashKey: 'k' }), undefined);
    eps[0]!.up = true;
    assert.equal(make(eps).pick({ attempt: 1, hashKey: 'k', exclude: new Set([eps[0]!]) }), undefined);
  });
}

test('round_robin: equal weights rotate evenly; smooth weighting interleaves', () => {
  const eq = roundRobin([new Ep('a'), new Ep('b'), new Ep('c')]);
  assert.deepEqual(Array.from({ length: 6 }, () => eq.pick({ attempt: 0 })!.id), ['a', 'b', 'c', 'a', 'b', 'c']);
  const w = roundRobin([new Ep('a', 5), new Ep('b', 1), new Ep('c', 1)]);
  // nginx's smooth weighted round robin sequence for 5:1:1.
  assert.deepEqual(Array.from({ length: 7 }, () => w.pick({ attempt: 0 })!.id), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
});

test('hash: a key always maps to the same endpoint; marking one of N unavailable moves only its keys', () => {
  const eps = Array.from({ length: 5 }, (_, i) => new Ep(`http://10.0.0.${i}:80`));
  const b = hash(eps);
  const before = Array.from({ length: 5000 }, (_, i) => b.pick({ attempt: 0, hashKey: `user-${i}` })!);
  for (let i = 0; i < 200; i++) assert.equal(b.pick({ attempt: 0, hashKey: `user-${i}` }), before[i]);
  eps[2]!.up = false;
  let moved = 0;
  for (let i = 0; i < 5000; i++) {
    const now = b.pick({ attempt: 0, hashKey: `user-${i}` })!;
    if (now !== before[i]) {
      moved++;
      assert.equal(before[i], eps[2], 'only keys of the removed endpoint move');
    }
  }
  // About 1/N of the keys (1000 of 5000) belonged to it.
  assert.ok(moved > 800 && moved < 1200, `moved ${moved} of 5000`);
});

test('hash: removing one of N from the set (table rebuilt) moves about 1/N of the keys', () => {
  const ids = Array.from({ length: 10 }, (_, i) => `http://10.0.0.${i}:80`);
  const full = buildTable(ids, ids.map(() => 1));
  const fewer = buildTable(
    ids.filter((_, i) => i !== 3),
    ids.filter((_, i) => i !== 3).map(() => 1),
  );
  let moved = 0;
  for (let s = 0; s < full.length; s++) {
    const was = ids[full[s]!]!;
    const now = ids.filter((_, i) => i !== 3)[fewer[s]!]!;
    if (was !== now) moved++;
  }
  const share = moved / full.length;
  // 1/N = 10% must move; Maglev's disruption is close to that minimum (the paper's Figure 12).
  assert.ok(share >= 0.1 && share < 0.16, `moved share ${share}`);
});

test('least_request: of two draws the less loaded wins; an overloaded endpoint is mostly avoided', () => {
  const eps = [new Ep('a'), new Ep('b'), new Ep('c')];
  eps[0]!.inflight = 50;
  const b = leastRequest(eps, { random: seeded(3) });
  let a = 0;
  for (let i = 0; i < 3000; i++) if (b.pick({ attempt: 0 })!.id === 'a') a++;
  // 'a' only wins when both draws are 'a', which P2C never does (distinct draws): never.
  assert.equal(a, 0);
});

test('least_conn: the least busy endpoint relative to its weight wins', () => {
  const eps = [new Ep('a', 2), new Ep('b'), new Ep('c')];
  eps[0]!.inflight = 3; // 1.5 per weight
  eps[1]!.inflight = 1;
  eps[2]!.inflight = 2;
  const b = leastConn(eps);
  assert.equal(b.pick({ attempt: 0 })!.id, 'b');
  eps[1]!.inflight = 4;
  assert.equal(b.pick({ attempt: 0 })!.id, 'a');
});

test('sticky: a valid token goes back to its endpoint while available; a forged one is rebalanced', () => {
  const eps = [new Ep('a'), new Ep('b'), new Ep('c')];
  const b = sticky(eps, { secret: 's3cret' });
  const token = b.tokenOf(eps[1]!)!;
  assert.equal(token, stickyToken('s3cret', 'b'));
  // (This used to assert the token had no letter "b" in it: true of this one token by chance.)
  assert.match(token, /^[A-Za-z0-9_-]{22}$/, 'opaque and cookie-safe');
  assert.notEqual(token, stickyToken('another secret', 'b'), 'it depends on the secret');
  for (let i = 0; i < 20; i++) assert.equal(b.pick({ attempt: 0, hashKey: token })!.id, 'b');
  eps[1]!.up = false;
  for (let i = 0; i < 20; i++) assert.notEqual(b.pick({ attempt: 0, hashKey: token })!.id, 'b');
  eps[1]!.up = true;
  // A token signed with another secret names nothing here: round robin decides.
  const forged = stickyToken('guess', 'b');
  const seen = new Set(Array.from({ length: 6 }, () => b.pick({ attempt: 0, hashKey: forged })!.id));
  assert.equal(seen.size, 3);
});
