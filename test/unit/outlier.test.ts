import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutlierDetector, type OutlierSubject } from '../../src/upstream/health/outlier.js';
import { EndpointHealth } from '../../src/upstream/health/state.js';

function subjects(n: number): OutlierSubject[] {
  return Array.from({ length: n }, (_, i) => ({ health: new EndpointHealth('app', `s${i}`), outlier5xx: 0, outlierConnect: 0, outlierTimer: null }));
}

const CONFIG = { consecutive_5xx: 2, consecutive_connect_failures: 1, base_ejection_time: 1000, max_ejection_time: 2500, max_ejection_percent: 50, readmit_on_check: true };

test('outlier: the n-th ejection lasts n × base, capped at max; a success clears the streak', (t) => {
  const s = subjects(2);
  const d = new OutlierDetector(s, CONFIG);
  t.after(() => d.close());
  const e = s[0]!;
  d.serverError(e, 'status 500');
  d.success(e);
  d.serverError(e, 'status 500');
  assert.equal(e.health.ejected, false, 'the streak was broken by a success');
  const lengths: number[] = [];
  for (let i = 0; i < 4; i++) {
    d.connectFailure(e, 'upstream_connect_refused');
    assert.equal(e.health.ejected, true);
    // Both stamps are taken in the same synchronous call: their difference is the ejection time.
    lengths.push(Math.round((e.health.ejectedUntil - e.health.changedAt) / 500) * 500);
    e.health.readmit('test');
  }
  assert.deepEqual(lengths, [1000, 2000, 2500, 2500]);
  assert.equal(e.health.ejections, 4);
});

test('outlier: never more than max_ejection_percent ejected, but always at least one', (t) => {
  const four = subjects(4);
  const d = new OutlierDetector(four, { ...CONFIG, max_ejection_percent: 50 });
  t.after(() => d.close());
  for (const e of four) d.connectFailure(e, 'refused');
  assert.deepEqual(four.map((e) => e.health.ejected), [true, true, false, false]);
  const one = subjects(1);
  const d1 = new OutlierDetector(one, { ...CONFIG, max_ejection_percent: 10 });
  t.after(() => d1.close());
  d1.connectFailure(one[0]!, 'refused');
  assert.equal(one[0]!.health.ejected, true);
});

test('outlier: a passing active check ends an ejection, unless readmit_on_check is off', (t) => {
  const s = subjects(2);
  const d = new OutlierDetector(s, CONFIG);
  const s2 = subjects(2);
  const off = new OutlierDetector(s2, { ...CONFIG, readmit_on_check: false });
  t.after(() => {
    d.close();
    off.close();
  });
  const e = s[0]!;
  d.connectFailure(e, 'refused');
  assert.equal(e.health.ejected, true);
  d.checkPassed(e);
  assert.equal(e.health.ejected, false);
  assert.equal(e.outlierTimer, null, 'the ejection timer is gone');
  assert.equal(e.health.reason, 'active check passed');
  assert.equal(e.health.ejections, 1, 'the count stays: the next ejection is longer');
  const kept = s2[0]!;
  off.connectFailure(kept, 'refused');
  off.checkPassed(kept);
  assert.equal(kept.health.ejected, true);
});
