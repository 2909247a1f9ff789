// What an upstream keeps across a reload, and what usher.close() leaves behind: real sockets.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startFlaky } from '../helpers/flaky.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import dnsPacket from 'dns-packet';
import { DnsDiscovery } from '../../src/upstream/discovery/dns.js';
import type { Endpoint } from '../../src/upstream/endpoint.js';
import { config, startUsher, waitFor } from '../helpers/usher.js';

test('sticky without a configured secret: a cookie stays valid across a reload that changes the upstream', async (t) => {
  const ups: TestUpstream[] = [];
  for (const name of ['a', 'b', 'c']) ups.push(await startUpstream(name));
  const upstream = (timeout: string) => ({ app: { balance: 'sticky', servers: ups.map((up) => up.url), timeouts: { response_header: timeout } } });
  const u = await startUsher({ upstreams: upstream('30s'), routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    for (const up of ups) await up.close();
  });
  const first = await request(`${u.url}/`);
  const cookie = (first.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  assert.ok(cookie.includes('='), `a sticky cookie was set: ${cookie}`);
  const before = u.usher.runtime.clusters.get('app');
  await u.usher.reload(config({ upstreams: upstream('20s'), routes: [{ upstream: 'app' }] }));
  assert.notEqual(u.usher.runtime.clusters.get('app'), before, 'a changed upstream is a new cluster');
  for (let i = 0; i < 6; i++) {
    const r = await request(`${u.url}/`, { headers: { cookie } });
    assert.equal(r.body, first.body, 'still pinned to its server');
    assert.equal(r.headers['set-cookie'], undefined, 'the cookie is still valid');
  }
});

test('usher.close() cuts an active health probe in flight (no socket or timer left running)', async (t) => {
  // A health endpoint that accepts and never answers: the probe waits for its 30 s timeout.
  const probes = new Set<Socket>();
  let closed = 0;
  const hang = createServer((s) => {
    probes.add(s);
    s.resume(); // read, so that the peer's FIN is seen
    s.on('error', () => {});
    s.on('close', () => closed++);
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of probes) s.destroy();
        hang.close(() => r());
      }),
  );
  const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
  const u = await startUsher({ upstreams: { app: { servers: [url], health_check: { path: '/healthz', interval: '10s', timeout: '30s' } } }, routes: [{ upstream: 'app' }] });
  await waitFor(() => probes.size === 1, 5000, 'a probe in flight');
  await u.close();
  await waitFor(() => closed === 1, 2000, 'the probe connection closed by usher.close()');
});

test('a reload that changes an upstream keeps the health of its servers: ejected stays out, down stays down until checks pass', async (t) => {
  const bad = await startFlaky('bad'); // passes the checks, answers requests 503
  const sick = await startFlaky('sick'); // fails the checks
  const live = await startFlaky('live');
  t.after(async () => {
    for (const up of [bad, sick, live]) await up.close();
  });
  bad.status = 503;
  const upstreams = (timeout: string) => ({
    app: {
      servers: [bad.url, sick.url, live.url],
      timeouts: { response_header: timeout },
      panic_threshold: 0, // two of three down would otherwise spread traffic over all three
      health_check: { path: '/healthz', interval: '40ms', timeout: '200ms', rise: 1, fall: 1 },
      // The 503 server passes its checks: only without readmit_on_check does its ejection hold.
      outlier_detection: { consecutive_5xx: 1, base_ejection_time: '1m', max_ejection_percent: 100, readmit_on_check: false },
    },
  });
  const u = await startUsher({ upstreams: upstreams('30s'), routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  sick.healthy = false;
  const before = u.usher.runtime.clusters.get('app')!;
  const [ejected, down] = before.endpoints as [Endpoint, Endpoint];
  await waitFor(() => !down.health.activeUp, 5000, 'sick marked down by the checks');
  for (let i = 0; i < 4 && !ejected.health.ejected; i++) await request(`${u.url}/`);
  assert.equal(ejected.health.ejected, true, 'the 503 server is ejected');
  await u.usher.reload(config({ upstreams: upstreams('20s'), routes: [{ upstream: 'app' }], log: { level: 'warn', access_log: true } }));
  const after = u.usher.runtime.clusters.get('app')!;
  assert.notEqual(after, before, 'a changed upstream is a new cluster');
  const [bad2, down2] = after.endpoints as [Endpoint, Endpoint];
  assert.equal(bad2.health.ejected, true, 'still ejected');
  assert.equal(down2.health.activeUp, false, 'still down');
  for (let i = 0; i < 4; i++) assert.equal((await request(`${u.url}/after`)).body, 'live');
  const afterLines = () => u.access.filter((l) => l.path === '/after');
  await waitFor(() => afterLines().length === 4, 5000, 'access log lines');
  assert.deepEqual(afterLines().map((l) => l.attempts), [1, 1, 1, 1], 'neither is tried');
  // The new checker started from "down": a passing check brings the server back.
  sick.healthy = true;
  await waitFor(() => down2.health.activeUp, 5000, 'sick healthy again');
});

test('a reload stops the retired cluster’s active checks at once, even while a request on it is still running', async (t) => {
  const probes: string[] = [];
  const waiting: (() => void)[] = [];
  const up = await startUpstream('x', (req, res) => {
    req.resume();
    if (req.url!.endsWith('healthz')) {
      probes.push(req.url!);
      return res.end('ok');
    }
    waiting.push(() => res.end('x'));
  });
  t.after(() => up.close());
  const upstreams = (path: string) => ({ app: { servers: [up.url], health_check: { path, interval: '20ms', timeout: '1s' } } });
  const u = await startUsher({ upstreams: upstreams('/old-healthz'), routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  const held = request(`${u.url}/long`); // keeps the previous runtime (and its cluster) busy
  await waitFor(() => waiting.length === 1 && probes.length > 0, 5000, 'request held, probes running');
  await u.usher.reload(config({ upstreams: upstreams('/new-healthz'), routes: [{ upstream: 'app' }] }));
  const oldAtReload = probes.filter((p) => p === '/old-healthz').length;
  await waitFor(() => probes.filter((p) => p === '/new-healthz').length >= 5, 5000, 'the new cluster probing');
  // At most the one probe that was already on its way when the reload came.
  assert.ok(probes.filter((p) => p === '/old-healthz').length <= oldAtReload + 1, `old probes: ${probes.join(' ')}`);
  waiting.splice(0).forEach((w) => w());
  assert.equal((await held).status, 200);
});

test('DNS discovery: stop() cancels a query in flight (no retry is sent after close)', async (t) => {
  // A DNS server that never answers: the resolver would retry each query after its timeout.
  const socket = createSocket('udp4');
  const names: string[] = [];
  socket.on('message', (msg: Buffer) => names.push(dnsPacket.decode(msg).questions?.[0]?.name ?? ''));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => socket.close(() => r())));
  const dnsConfig = { refresh: 200, family: 'ipv4' as const, servers: [`127.0.0.1:${(socket.address() as AddressInfo).port}`], srv: false };
  const stopped = new DnsDiscovery(dnsConfig, ['stopped.test'], () => {});
  // A twin left running: its retry shows when the stopped one's would have been due.
  const control = new DnsDiscovery(dnsConfig, ['control.test'], () => {});
  t.after(() => control.stop());
  stopped.start();
  control.start();
  const count = (name: string) => names.filter((n) => n === name).length;
  await waitFor(() => count('stopped.test') === 1 && count('control.test') === 1, 5000, 'both queries sent');
  stopped.stop();
  await waitFor(() => count('control.test') >= 2, 5000, 'the control query retried');
  assert.equal(count('stopped.test'), 1, 'the stopped resolver sent no retry');
});
