import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigObject } from '../../src/config/index.js';
import { Cluster } from '../../src/upstream/cluster.js';

function cluster(slowStart: string): Cluster {
  const r = loadConfigObject(
    {
      listeners: [{ address: 0 }],
      upstreams: { app: { servers: [{ url: 'http://127.0.0.1:1', weight: 10 }, 'http://127.0.0.1:2'], slow_start: slowStart } },
      routes: [{ upstream: 'app' }],
    },
    '<test>',
  );
  assert.ok(r.ok);
  return new Cluster(r.config.upstreams.app!);
}

test('slow start: a server that recovers ramps from 10% of its weight; at start it has full weight', async (t) => {
  const c = cluster('1h');
  t.after(() => c.destroy());
  const e = c.endpoints[0]!;
  assert.equal(e.weight, 10, 'full weight at start');
  e.health.setActive(false, 'status 503');
  e.health.setActive(true, 'status 200');
  assert.ok(e.weight >= 1 && e.weight < 1.1, `ramping: ${e.weight}`);
  // The balancer sees the ramped weight: the recovered server gets far less than 10/11.
  let picked = 0;
  for (let i = 0; i < 1100; i++) if (c.pick({ attempt: 0 }) === e) picked++;
  assert.ok(picked < 650, `picked ${picked} of 1100`);
});

test('slow start off (0s): a recovered server is at full weight at once', async (t) => {
  const c = cluster('0s');
  t.after(() => c.destroy());
  const e = c.endpoints[0]!;
  e.health.setActive(false, 'x');
  e.health.setActive(true, 'y');
  assert.equal(e.weight, 10);
});
