// Components are built without side effects and start only when a runtime goes live (issue 10,
// point 6): `usher validate`, `usher explain` and a rejected reload open no pool, send no health
// probe and no DNS query; a live start does all three. Real CLI, real DNS server, real upstream.
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startDns } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor } from '../helpers/usher.js';
import { Cluster } from '../../src/upstream/cluster.js';

const LIMIT = { timeout: 120_000 };
const NAME = 'api.lifecycle.test';

/** An HTTP upstream that counts the TCP connections made to it and the health probes among its requests. */
async function countingUpstream(t: { after(fn: () => Promise<void>): void }, host = '127.0.0.1') {
  const sockets = new Set<Socket>();
  /** Remote ports of the connections open now; a barrier waits for its own to show up. */
  const open = new Set<number>();
  const waiting = new Map<number, () => void>();
  let accepted = 0;
  let barriers = 0;
  const seen = { probes: 0, requests: 0 };
  const server: Server = createHttpServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') seen.probes++;
    else seen.requests++;
    res.end('counted');
  });
  server.on('connection', (s: Socket) => {
    accepted++;
    const port = s.remotePort!;
    open.add(port);
    sockets.add(s);
    s.on('close', () => (sockets.delete(s), open.delete(port)));
    waiting.get(port)?.();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port,
    /** Connections (barriers not counted), health probes and other requests so far. */
    counts: () => ({ connections: accepted - barriers, probes: seen.probes, requests: seen.requests }),
    /**
     * Resolves once every connection made before this call has been counted: a connection of
     * its own, accepted after them (one listening socket accepts in order). Not a sleep.
     */
    settle: () =>
      new Promise<void>((resolve, reject) => {
        const c = connect(port, host);
        c.on('error', reject);
        c.on('connect', () => {
          const local = c.localPort!;
          const done = () => {
            waiting.delete(local);
            barriers++;
            c.destroy();
            resolve();
          };
          // The server may have accepted it before this client saw 'connect', or after.
          if (open.has(local)) done();
          else waiting.set(local, done);
        });
      }),
  };
}

/** A port something else holds, so that a listener on it cannot bind. */
async function busyPort(t: { after(fn: () => Promise<void>): void }): Promise<number> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  return (holder.address() as AddressInfo).port;
}

/** An upstream found by DNS (resolving to the counting upstream) with active checks, mirrored to a static one. */
function upstreams(dnsServer: string, port: number, shadowPort: number): Record<string, unknown> {
  const health = { path: '/healthz', interval: '50ms', timeout: '1s', jitter: 0 };
  return {
    app: { servers: [`http://${NAME}:${port}`], dns: { refresh: '50ms', family: 'ipv4', servers: [dnsServer] }, health_check: health },
    shadow: { servers: [`http://127.0.0.1:${shadowPort}`], health_check: health },
  };
}

const ROUTES = [{ match: { path: '/' }, upstream: 'app', mirror: { upstream: 'shadow' } }];

test('usher validate and usher explain send nothing (no DNS query, no probe, no connection); usher serve does', LIMIT, async (t) => {
  const dns = await startDns({ [NAME]: ['127.0.0.1'] });
  t.after(() => dns.close());
  const app = await countingUpstream(t);
  const shadow = await countingUpstream(t);
  const file = writeFile(
    join(tempDir(t), 'usher.json'),
    JSON.stringify({ listeners: [{ address: '127.0.0.1:0' }], log: { level: 'info' }, upstreams: upstreams(dns.server, app.port, shadow.port), routes: ROUTES }),
  );

  const validated = await runCli(['validate', '--config', file]);
  assert.equal(validated.code, 0, validated.stderr);
  const explained = await runCli(['explain', '--config', file, 'GET', 'http://example.test/']);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stdout, /app/, 'explain shows the route to app');
  await dns.settle();
  await app.settle();
  await shadow.settle();
  assert.equal(dns.asked(NAME), 0, 'no DNS query from validate or explain');
  assert.deepEqual(app.counts(), { connections: 0, probes: 0, requests: 0 }, 'nothing sent to the DNS-discovered upstream');
  assert.deepEqual(shadow.counts(), { connections: 0, probes: 0, requests: 0 }, 'nothing sent to the static (mirror) upstream');

  // The same file served: the counters do move, so the zeros above are not a blind spot.
  const s = await serve(t, ['--config', file]);
  await waitFor(() => dns.asked(NAME) > 0 && app.counts().probes > 0 && shadow.counts().probes > 0, 10_000, 'DNS queries and probes from a live usher');
  await waitFor(() => s.cli.stdout.includes('upstream servers changed (DNS)'), 10_000, 'the DNS answer applied');
  const r = await request(`${s.url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'counted');
  await waitFor(() => shadow.counts().requests === 1, 5000, 'the mirrored copy');
});

test('a rejected reload (a listener that cannot bind) starts nothing; the same reload without it does', LIMIT, async (t) => {
  const dns = await startDns({ [NAME]: ['127.0.0.1'] });
  t.after(() => dns.close());
  const base = await countingUpstream(t);
  const app = await countingUpstream(t);
  const shadow = await countingUpstream(t);
  const busy = await busyPort(t);
  const first = { upstreams: { base: { servers: [`http://127.0.0.1:${base.port}`] } }, routes: [{ match: { path: '/base' }, upstream: 'base' }] };
  const u = await startUsher(first);
  t.after(() => u.close());
  const next = (listeners: string[]) =>
    config({
      listeners: listeners.map((address) => ({ address })),
      upstreams: { ...first.upstreams, ...upstreams(dns.server, app.port, shadow.port) },
      routes: [...first.routes, ...ROUTES],
    });

  await assert.rejects(u.usher.reload(next(['127.0.0.1:0', `127.0.0.1:${busy}`])), /EADDRINUSE/);
  assert.equal(u.usher.runtime.clusters.has('app'), false, 'the previous config still serves');
  await dns.settle();
  await app.settle();
  await shadow.settle();
  assert.equal(dns.asked(NAME), 0, 'no DNS query from the rejected reload');
  assert.deepEqual(app.counts(), { connections: 0, probes: 0, requests: 0 });
  assert.deepEqual(shadow.counts(), { connections: 0, probes: 0, requests: 0 });
  assert.equal((await request(`${u.url}/base`)).status, 200, 'still serving');

  await u.usher.reload(next(['127.0.0.1:0']));
  await waitFor(() => dns.asked(NAME) > 0 && app.counts().probes > 0 && shadow.counts().probes > 0, 10_000, 'DNS queries and probes once the reload is committed');
  const cluster = u.usher.runtime.clusters.get('app')!;
  await waitFor(() => cluster.endpoints.every((e) => e.id === `http://127.0.0.1:${app.port}`), 10_000, 'the DNS answer applied');
  assert.ok(cluster.endpoints.every((e) => e.started), 'an endpoint found by DNS later is started as it arrives');
  assert.equal((await request(`${u.url}/`)).body, 'counted');
});

test('probes: false — no active checks in this process; results fed in from outside (Cluster.applyProbe) steer the traffic', LIMIT, async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const health = { path: '/healthz', interval: '50ms', timeout: '1s', jitter: 0, rise: 1, fall: 1 };
  const obj = { upstreams: { app: { servers: [a.url, b.url], health_check: health, panic_threshold: 0 } }, routes: [{ upstream: 'app' }] };
  const built = new Cluster(config(obj).upstreams.app!);
  assert.equal(built.live, false);
  assert.ok(built.endpoints.every((e) => !e.started), 'a built cluster has no pool');
  const u = await startUsher(obj, { probes: false });
  t.after(() => u.close());
  const cluster = u.usher.runtime.clusters.get('app')!;
  assert.equal(cluster.live, true);
  assert.ok(cluster.endpoints.every((e) => e.started), 'started: the pools are open');
  assert.equal(cluster.probing, false, 'no checker runs in this process');
  const bodies = async (n: number) => {
    const out = new Set<string>();
    for (let i = 0; i < n; i++) out.add((await request(`${u.url}/`)).body);
    return out;
  };
  assert.deepEqual(await bodies(4), new Set(['a', 'b']));

  // What a primary that probes for its workers would publish: b failed its checks.
  cluster.applyProbe(b.url, { ok: false, detail: 'status 503' }, 'down');
  assert.deepEqual(await bodies(4), new Set(['a']), 'b is out');
  const eb = cluster.endpoints.find((e) => e.id === b.url)!;
  assert.equal(eb.health.lastCheck?.ok, false);
  assert.equal(eb.healthyNow(), false);
  cluster.applyProbe(b.url, { ok: true, detail: 'status 200' }, 'up');
  assert.deepEqual(await bodies(4), new Set(['a', 'b']), 'b is back');
  const probed = () => [...a.requests, ...b.requests].filter((r) => r.url === '/healthz').length;
  assert.equal(probed(), 0, 'no probe was sent by this process');

  // The same config with probes on (the default): the checks do go out.
  const local = await startUsher(obj);
  t.after(() => local.close());
  assert.equal(local.usher.runtime.clusters.get('app')!.probing, true);
  await waitFor(() => probed() >= 2, 5000, 'probes from a usher that runs its checks');
});
