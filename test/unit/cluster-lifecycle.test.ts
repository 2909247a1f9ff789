// Cluster and Endpoint lifecycle without the network: build (nothing open) → start → close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errors } from 'undici';
import { loadConfigObject } from '../../src/config/index.js';
import { Cluster } from '../../src/upstream/cluster.js';

function cluster(): Cluster {
  const r = loadConfigObject(
    {
      listeners: [{ address: 0 }],
      // Nothing listens on ports 1 and 2: a probe sent while a cluster is live is refused.
      upstreams: { app: { servers: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], health_check: { path: '/healthz', interval: '1h' } } },
      routes: [{ upstream: 'app' }],
    },
    '<test>',
  );
  assert.ok(r.ok);
  return new Cluster(r.config.upstreams.app!);
}

test('a built cluster holds no pool and runs no checks; start() opens both, once; close() ends them', async (t) => {
  const c = cluster();
  t.after(() => c.destroy());
  assert.equal(c.live, false);
  assert.equal(c.probing, false);
  assert.ok(c.endpoints.every((e) => !e.started));
  c.start();
  assert.equal(c.live, true);
  assert.equal(c.probing, true);
  assert.ok(c.endpoints.every((e) => e.started));
  const pool = c.endpoints[0]!.pool;
  c.start();
  assert.equal(c.endpoints[0]!.pool, pool, 'start is idempotent: the same pool');
  await c.close();
  assert.equal(c.live, false);
  assert.equal(c.probing, false);
  assert.equal(pool.closed, true);
  c.start();
  assert.equal(c.live, false, 'a closed cluster does not start again');
});

test('start({ probes: false }): pools open, no checker runs', async (t) => {
  const c = cluster();
  t.after(() => c.destroy());
  c.start({ probes: false });
  assert.equal(c.live, true);
  assert.equal(c.probing, false);
  assert.ok(c.endpoints.every((e) => e.started));
});

test('an endpoint asked for its pool before start opens it then; after close it gets a closed one', async (t) => {
  const early = cluster();
  t.after(() => early.destroy());
  const e = early.endpoints[0]!;
  assert.equal(e.pool.closed, false, 'opened on first use');
  assert.equal(e.started, true);

  const retired = cluster();
  await retired.close();
  const late = retired.endpoints[0]!;
  assert.equal(late.pool.closed, true, 'a request on a retired runtime finds the pool closed');
  await assert.rejects(late.pool.request({ path: '/', method: 'GET' }), errors.ClientClosedError);
});
