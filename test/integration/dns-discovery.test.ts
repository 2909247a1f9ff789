import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startDns } from '../helpers/dns.js';
import { startUsher, waitFor } from '../helpers/usher.js';

/** An upstream on `host` (loopback addresses 127.0.0.x) and a given port; may hold requests. */
async function upstreamOn(host: string, port: number, name: string) {
  const held: (() => void)[] = [];
  const state = { hold: false, served: 0 };
  const server: Server = createServer((req, res) => {
    req.resume();
    state.served++;
    const answer = () => res.end(`${name} host=${req.headers.host}`);
    if (state.hold) held.push(answer);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    server,
    state,
    port: (server.address() as AddressInfo).port,
    release: () => held.splice(0).forEach((f) => f()),
    held: () => held.length,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

test('dns discovery: a server by name follows its A records; removed addresses finish their requests', async (t) => {
  const one = await upstreamOn('127.0.0.1', 0, 'one');
  const two = await upstreamOn('127.0.0.2', one.port, 'two');
  const dns = await startDns({ 'api.test': ['127.0.0.1'] });
  const u = await startUsher({
    upstreams: { app: { servers: [`http://api.test:${one.port}`], host_header: 'upstream', dns: { refresh: '50ms', family: 'ipv4', servers: [dns.server] } } },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await one.close();
    await two.close();
    await dns.close();
  });
  const cluster = () => u.usher.runtime.clusters.get('app')!;
  const ids = () => cluster().endpoints.map((e) => e.id);
  await waitFor(() => ids().join() === `http://127.0.0.1:${one.port}`, 5000, 'first answer applied');
  const r = await request(`${u.url}/`);
  assert.equal(r.body, `one host=api.test:${one.port}`, 'Host is still the name');
  const changed = u.logs.find((l) => l.msg === 'upstream servers changed (DNS)');
  assert.deepEqual(changed?.added, [`http://127.0.0.1:${one.port}`]);
  assert.deepEqual(changed?.removed, [`http://api.test:${one.port}`]);

  dns.records.set('api.test', ['127.0.0.1', '127.0.0.2']);
  await waitFor(() => ids().length === 2, 5000, 'second address added');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await request(`${u.url}/`)).body.split(' ')[0]!);
  assert.deepEqual(seen, new Set(['one', 'two']));

  // A request in flight on "one" when its address disappears still completes.
  one.state.hold = true;
  two.state.hold = true;
  const pair = [request(`${u.url}/`), request(`${u.url}/`)];
  await waitFor(() => one.held() === 1 && two.held() === 1, 5000, 'one request on each');
  two.state.hold = false;
  two.release();
  const first = await Promise.race(pair.map((p, i) => p.then(() => i)));
  const inflight = pair[1 - first]!;
  dns.records.set('api.test', ['127.0.0.2']);
  await waitFor(() => ids().join() === `http://127.0.0.2:${one.port}`, 5000, 'first address removed');
  one.release();
  const done = await inflight;
  assert.equal(done.status, 200);
  assert.match(done.body, /^one /);
  for (let i = 0; i < 4; i++) assert.match((await request(`${u.url}/`)).body, /^two /);

  // A DNS failure (NXDOMAIN) keeps the last good addresses.
  dns.records.delete('api.test');
  const queries = dns.queries;
  await waitFor(() => dns.queries > queries + 2, 5000, 'more lookups');
  assert.deepEqual(ids(), [`http://127.0.0.2:${one.port}`]);
  assert.equal((await request(`${u.url}/`)).status, 200);
});

test('dns discovery: family any uses A and AAAA records', async (t) => {
  const v4 = await upstreamOn('127.0.0.1', 0, 'v4');
  const v6 = await upstreamOn('::1', v4.port, 'v6');
  const dns = await startDns({ 'dual.test': ['127.0.0.1', '::1'] });
  const u = await startUsher({
    upstreams: { app: { servers: [`http://dual.test:${v4.port}`], dns: { refresh: '1m', servers: [dns.server] } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await v4.close();
    await v6.close();
    await dns.close();
  });
  const ids = () => u.usher.runtime.clusters.get('app')!.endpoints.map((e) => e.id);
  await waitFor(() => ids().length === 2, 5000, 'both families resolved');
  assert.deepEqual(ids().sort(), [`http://127.0.0.1:${v4.port}`, `http://[::1]:${v4.port}`]);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add((await request(`${u.url}/`)).body.split(' ')[0]!);
  assert.deepEqual(seen, new Set(['v4', 'v6']));
});

test('dns discovery: SRV records give ports, weights and priority groups', async (t) => {
  const first = await upstreamOn('127.0.0.1', 0, 'first');
  const second = await upstreamOn('127.0.0.1', 0, 'second');
  const name = '_http._tcp.svc.test';
  const dns = await startDns(
    { 'a.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'] },
    {
      [name]: [
        { priority: 10, weight: 5, port: first.port, target: 'a.test' },
        { priority: 20, weight: 1, port: second.port, target: 'b.test' },
      ],
    },
  );
  const u = await startUsher({
    upstreams: { app: { servers: [`http://${name}`], dns: { refresh: '50ms', srv: true, servers: [dns.server] } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await first.close();
    await second.close();
    await dns.close();
  });
  const endpoints = () => u.usher.runtime.clusters.get('app')!.endpoints;
  await waitFor(() => endpoints().length === 2, 5000, 'SRV answer applied');
  assert.deepEqual(
    endpoints()
      .map((e) => [e.id, e.server.weight, e.server.priority])
      .sort((x, y) => (x[2] as number) - (y[2] as number)),
    [
      [`http://127.0.0.1:${first.port}`, 5, 0],
      [`http://127.0.0.1:${second.port}`, 1, 1],
    ],
  );
  for (let i = 0; i < 4; i++) assert.match((await request(`${u.url}/`)).body, /^first /, 'the lower SRV priority takes the traffic');
  dns.srv.set(name, [{ priority: 20, weight: 1, port: second.port, target: 'b.test' }]);
  await waitFor(() => endpoints().length === 1, 5000, 'record removed');
  for (let i = 0; i < 4; i++) assert.match((await request(`${u.url}/`)).body, /^second /);
});
