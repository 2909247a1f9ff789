import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Balancer, BalancerEndpoint } from '../../src/upstream/balancer.js';
import { roundRobin } from '../../src/upstream/balancers/round-robin/index.js';

// The conformance suite every balancer must pass (architecture guide, habit 6). New balancers
// add themselves to BALANCERS.
const BALANCERS: Record<string, <E extends BalancerEndpoint>(e: readonly E[]) => Balancer<E>> = {
  round_robin: roundRobin,
};

class Ep implements BalancerEndpoint {
  up = true;
  constructor(
    readonly id: string,
    readonly weight = 1,
  ) {}
  available(): boolean {
    return this.up;
  }
}

for (const [name, make] of Object.entries(BALANCERS)) {
  test(`${name}: honours weights over many picks`, () => {
    const eps = [new Ep('a', 5), new Ep('b', 1), new Ep('c', 2)];
    const b = make(eps);
    const counts = new Map<string, number>();
    const n = 8000;
    for (let i = 0; i < n; i++) {
      const e = b.pick({ attempt: 0 })!;
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
    const b = make(eps);
    const exclude = new Set([eps[0]!]);
    for (let i = 0; i < 100; i++) {
      assert.notEqual(b.pick({ attempt: 0 })!.id, 'b');
      assert.equal(b.pick({ attempt: 1, exclude })!.id, 'c');
    }
  });

  test(`${name}: returns undefined when nothing is available`, () => {
    assert.equal(make([] as Ep[]).pick({ attempt: 0 }), undefined);
    const eps = [new Ep('a'), new Ep('b')];
    for (const e of eps) e.up = false;
    assert.equal(make(eps).pick({ attempt: 0 }), undefined);
  });
}

test('round_robin: equal weights rotate evenly; smooth weighting interleaves', () => {
  const eq = roundRobin([new Ep('a'), new Ep('b'), new Ep('c')]);
  assert.deepEqual(Array.from({ length: 6 }, () => eq.pick({ attempt: 0 })!.id), ['a', 'b', 'c', 'a', 'b', 'c']);
  const w = roundRobin([new Ep('a', 5), new Ep('b', 1), new Ep('c', 1)]);
  // nginx's smooth weighted round robin sequence for 5:1:1.
  assert.deepEqual(Array.from({ length: 7 }, () => w.pick({ attempt: 0 })!.id), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
});
