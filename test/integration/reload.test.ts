import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { CERT_FILE, KEY_FILE } from '../helpers/h2.js';
import { config, startUsher, waitFor, proxyTo } from '../helpers/usher.js';

test('reload swaps routes atomically, keeps unchanged pools, and lets in-flight requests finish on the old config', async (t) => {
  let release: (() => void) | undefined;
  const slow = await startUpstream('slow', (req, res) => {
    req.resume();
    release = () => res.end('slow done');
  });
  const fast = await startUpstream('fast');
  const base = {
    upstreams: { keep: { servers: [fast.url] }, change: { servers: [slow.url] } },
    routes: [{ match: { path: '/slow' }, upstream: 'change' }, { upstream: 'keep' }],
  };
  const u = await startUsher(base);
  t.after(async () => {
    await u.close();
    await slow.close();
    await fast.close();
  });
  const keepBefore = u.usher.runtime.clusters.get('keep');
  const changeBefore = u.usher.runtime.clusters.get('change');

  const inflight = request(`${u.url}/slow`);
  await waitFor(() => release !== undefined, 5000, 'the slow request to reach its upstream');

  await u.usher.reload(
    config({
      log: { level: 'warn', access_log: true },
      upstreams: { keep: { servers: [fast.url] }, change: { servers: [slow.url], timeouts: { connect: '1s' } } },
      routes: [{ match: { path: '/new' }, respond: { status: 200, body: 'new route' } }, { upstream: 'keep' }],
    }),
  );
  assert.equal(u.usher.runtime.clusters.get('keep'), keepBefore, 'an unchanged upstream keeps its pool');
  assert.notEqual(u.usher.runtime.clusters.get('change'), changeBefore, 'a changed upstream gets a new pool');
  assert.equal((await request(`${u.url}/new`)).body, 'new route');
  assert.equal((await request(`${u.url}/slow`)).body, 'fast', '/slow now falls through to the catch-all');

  release!();
  const old = await inflight;
  assert.equal(old.status, 200);
  assert.equal(old.body, 'slow done', 'the request that started before the reload finished on the old config');
});

test('reload opens new listeners and closes removed ones; a listener that cannot bind leaves everything as it was', async (t) => {
  const { up: a, u } = await proxyTo(t, 'a');
  const other = await startUpstream('occupier');
  t.after(() => other.close());

  // Binding a port that is taken fails: nothing changes.
  const bad = config({
    listeners: [{ address: `127.0.0.1:${u.port}` }, { address: `127.0.0.1:${other.port}` }],
    upstreams: { app: { servers: [a.url] } },
    routes: [{ respond: { status: 200, body: 'should not apply' } }],
  });
  await assert.rejects(u.usher.reload(bad), /EADDRINUSE/);
  assert.equal((await request(`${u.url}/`)).body, 'a');
  assert.equal(u.usher.addresses().length, 1);

  // Moving to another port and dropping the old listener.
  const port = await closedPort();
  await u.usher.reload(config({ listeners: [{ address: `127.0.0.1:${port}` }], upstreams: { app: { servers: [a.url] } }, routes: [{ upstream: 'app' }] }));
  const addrs = u.usher.addresses();
  assert.equal(addrs.length, 1);
  assert.equal(addrs[0]!.port, port);
  assert.equal((await request(`http://127.0.0.1:${addrs[0]!.port}/`)).body, 'a');
  await assert.rejects(request(`${u.url}/`), /ECONNREFUSED/);
});

test('two listeners on port 0 are two listeners: both serve, a reload keeps both, close() closes both', { timeout: 120_000 }, async (t) => {
  const { up } = await proxyTo(t, 'app');
  const two = { listeners: [{ address: '127.0.0.1:0' }, { address: '127.0.0.1:0' }], upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] };
  const u = await startUsher(two);
  let closed = false;
  t.after(async () => {
    if (!closed) await u.close();
  });
  const ports = u.usher.addresses().map((a) => a.port);
  assert.equal(ports.length, 2);
  assert.notEqual(ports[0], ports[1]);
  for (const port of ports) assert.equal((await request(`http://127.0.0.1:${port}/`)).body, 'app');
  await u.usher.reload(config(two));
  assert.deepEqual(u.usher.addresses().map((a) => a.port), ports, 'the same two listeners are kept');
  await u.close();
  closed = true;
  for (const port of ports) await assert.rejects(request(`http://127.0.0.1:${port}/`), /ECONNREFUSED/);
});

test('a reload that switches TLS on a serving port is refused with the listener named; the old listener keeps serving', { timeout: 120_000 }, async (t) => {
  const { up } = await proxyTo(t, 'app');
  const port = await closedPort();
  const plain = { listeners: [{ address: `127.0.0.1:${port}` }], upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] };
  const u = await startUsher(plain);
  t.after(() => u.close());
  assert.equal((await request(`http://127.0.0.1:${port}/`)).body, 'app');
  await assert.rejects(
    u.usher.reload(config({ ...plain, listeners: [{ address: `127.0.0.1:${port}`, tls: { cert: CERT_FILE, key: KEY_FILE } }] })),
    /listeners\[0\] \(127\.0\.0\.1:\d+\): switching TLS on on a port that is serving takes a restart/,
  );
  assert.equal((await request(`http://127.0.0.1:${port}/`)).body, 'app', 'the plain listener still serves');
  assert.deepEqual(u.usher.addresses().map((a) => [a.port, a.tls]), [[port, false]]);
});
