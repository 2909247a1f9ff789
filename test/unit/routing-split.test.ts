import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hash32, Split } from '../../src/router/split.js';
import type { Cluster } from '../../src/upstream/cluster.js';

// Splits only hand clusters back; names stand in for them.
const side = (name: string) => ({ name }) as unknown as Cluster;
const A = side('a');
const B = side('b');
const C = side('c');
const nameOf = (c: Cluster) => (c as unknown as { name: string }).name;

test('the sticky hash is pinned: changing it would move every client to a random side on upgrade', () => {
  assert.equal(hash32(''), 2872998923);
  assert.equal(hash32('user-1'), 2005895916);
  assert.equal(hash32('10.0.0.1'), 2931590574);
});

test('sticky sides: shares follow the weights; a weight change moves only keys across the boundary', () => {
  const before = new Split([{ cluster: A, weight: 95 }, { cluster: B, weight: 5 }], { kind: 'cookie', name: 'uid' });
  const after = new Split([{ cluster: A, weight: 90 }, { cluster: B, weight: 10 }], { kind: 'cookie', name: 'uid' });
  const n = 20_000;
  let onB = 0;
  let onBAfter = 0;
  for (let i = 0; i < n; i++) {
    const key = `k${i}`;
    const x = before.sideFor(key);
    const y = after.sideFor(key);
    assert.equal(before.sideFor(key), x, 'deterministic');
    if (x === B) {
      onB++;
      assert.equal(y, B, `${key} was on b and must stay there when b grows`);
    }
    if (y === B) onBAfter++;
  }
  // Deterministic keys: these bounds are 4σ of a fair coin, and the values cannot change run to run.
  assert.ok(Math.abs(onB / n - 0.05) < 0.007, `b share ${onB / n}`);
  assert.ok(Math.abs(onBAfter / n - 0.1) < 0.009, `b share after ${onBAfter / n}`);
});

test('without a key: smooth weighted round robin, exact and interleaved; weight 0 gets nothing', () => {
  const s = new Split([{ cluster: A, weight: 5 }, { cluster: B, weight: 1 }, { cluster: C, weight: 0 }], undefined);
  const rr = { clientIp: '', cookie: () => undefined, header: () => undefined } as never;
  const picks = Array.from({ length: 12 }, () => nameOf(s.choose(rr)));
  assert.deepEqual(picks, ['a', 'a', 'a', 'b', 'a', 'a', 'a', 'a', 'a', 'b', 'a', 'a']);
  const zero = new Split([{ cluster: A, weight: 0 }, { cluster: B, weight: 3 }], { kind: 'client_ip' });
  for (let i = 0; i < 200; i++) assert.equal(zero.sideFor(`10.0.${i}.1`), B);
});
