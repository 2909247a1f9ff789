// gRPC streams across reloads (issue #16 point 3): a bidirectional call on a route a reload left
// alone keeps going through 20 reloads; when a reload changes its route, the drain policy ends it
// with grpc-status 14 UNAVAILABLE (a status clients retry on), in the trailers of the response
// usher had been relaying. Real grpc-js client and server, h2c on both sides.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { config, startUsher, waitFor } from '../helpers/usher.js';

const ser = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): unknown => JSON.parse(b.toString()) as unknown;
const SERVICE = {
  bidi: { path: '/test.Echo/Bidi', requestStream: true, responseStream: true, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
} as unknown as grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(SERVICE, 'Echo');
type Msg = { n: number };

test('a gRPC bidi stream on an unchanged route survives 20 reloads; a change of its route ends it with UNAVAILABLE', async (t) => {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ n: m.n + 100 }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const settings = (n: number, route: Record<string, unknown> = {}) => ({
    log: { level: 'warn', access_log: true },
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { grpc: { protocol: 'h2c', servers: [`http://127.0.0.1:${port}`] } },
    routes: [
      { name: 'other', match: { path: '/other' }, respond: { body: `v${n}` } },
      { name: 'grpc', match: { path: '/test.Echo' }, upstream: 'grpc', drain: { grace: 0 }, ...route },
    ],
  });
  const u = await startUsher(settings(0));
  const c = new EchoClient(`127.0.0.1:${u.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { bidi: () => grpc.ClientDuplexStream<Msg, Msg> };
  t.after(async () => {
    c.close();
    await u.close(200);
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });
  const call = c.bidi();
  const got: number[] = [];
  let status: grpc.StatusObject | undefined;
  call.on('data', (m: Msg) => got.push(m.n));
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => undefined); // the status says it
  const roundTrip = async (n: number) => {
    call.write({ n });
    await waitFor(() => got.includes(n + 100), 20_000, `the answer to ${n}`);
  };
  await roundTrip(0);
  for (let n = 1; n <= 20; n++) {
    await u.usher.reload(config(settings(n)));
    await roundTrip(n);
  }
  assert.equal(status, undefined, 'the call is still open');
  assert.equal(u.usher.longLivedConnections.size, 1);
  assert.equal(u.usher.runtime.inflight, 1, 'counted on the runtime of now');

  await u.usher.reload(config(settings(21, { request_headers: { set: { 'x-v': '2' } } })));
  await waitFor(() => status !== undefined, 20_000, 'the status');
  assert.equal(status!.code, grpc.status.UNAVAILABLE);
  assert.match(status!.details, /route changed/);
  // The exchange is over: its upstream stream was reset (undici's abort: RST_STREAM NO_ERROR,
  // which grpc-js does not report as a cancel).
  await waitFor(() => u.usher.inflight === 0 && u.usher.longLivedConnections.size === 0, 20_000, 'the exchange done');
  await waitFor(() => u.access.some((l) => l.reason === 'route_reloaded'), 20_000, 'the access-log line');
});
