import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { CERT_FILE, KEY_FILE } from '../helpers/h2.js';
import { closedPort } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

// A hand-written service definition with JSON messages: what grpc-js generates from a .proto,
// without a proto compiler in the tests.
const ser = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): unknown => JSON.parse(b.toString()) as unknown;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: ser,
  requestDeserialize: de,
  responseSerialize: ser,
  responseDeserialize: de,
});
const SERVICE = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} as unknown as grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(SERVICE, 'Echo');
type Msg = { n: number; text?: string };

/** A real gRPC server (grpc-js) on 127.0.0.1:0, h2c. */
async function startGrpcServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      if (call.request.text === 'deny') return cb({ code: grpc.status.PERMISSION_DENIED, details: 'not for you' });
      if (call.request.text === 'hang') return; // never answers
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'from-server');
      const md = call.metadata.get('x-client')[0];
      cb(null, { n: call.request.n * 2, text: `${String(md)}|${String(call.metadata.get('x-forwarded-for')[0])}` }, trailer);
    },
    serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ n: i });
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n));
      call.on('end', () => cb(null, { n: sum }));
    },
    bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ n: m.n + 100 }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

type Call = (...args: unknown[]) => unknown;
type EchoClientT = grpc.Client & { unary: Call; serverStream: Call; clientStream: Call; bidi: Call };

function client(u: TestUsher): EchoClientT {
  return new EchoClient(`127.0.0.1:${u.port}`, grpc.credentials.createInsecure()) as unknown as EchoClientT;
}

function unary(c: EchoClientT, req: Msg, md = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<{ err: grpc.ServiceError | null; res?: Msg; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    let result: { err: grpc.ServiceError | null; res?: Msg } | undefined;
    let status = false;
    const done = () => result && status && resolve({ ...result, trailers });
    const call = c.unary(req, md, options, (err: grpc.ServiceError | null, res?: Msg) => {
      result = { err, res };
      done();
    }) as grpc.ClientUnaryCall;
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
      status = true;
      done();
    });
  });
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, extra: Record<string, unknown> = {}) {
  const g = await startGrpcServer();
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { grpc: { protocol: 'h2c', servers: [`http://127.0.0.1:${g.port}`] } },
    routes: [{ match: { path: '/test.Echo' }, upstream: 'grpc' }],
    ...extra,
  });
  const c = client(u);
  t.after(async () => {
    c.close();
    await u.close();
    await g.close();
  });
  return { g, u, c };
}

test('gRPC unary through usher (h2c both sides): metadata in, trailers out, grpc-status intact', async (t) => {
  const { u, c } = await setup(t);
  const md = new grpc.Metadata();
  md.set('x-client', 'hello');
  const r = await unary(c, { n: 21 }, md);
  assert.equal(r.err, null);
  assert.deepEqual(r.res, { n: 42, text: 'hello|127.0.0.1' });
  assert.deepEqual(r.trailers?.get('x-trailer'), ['from-server'], 'trailing metadata passed through');
  await waitFor(() => u.access.length >= 1, 2000, 'access log');
  assert.equal(u.access[0]!.upstream, u.config.upstreams.grpc!.servers[0]!.url);
  assert.equal(u.access[0]!.status, 200);
});

test('gRPC error status from the server passes through (Trailers-Only)', async (t) => {
  const { c } = await setup(t);
  const r = await unary(c, { n: 1, text: 'deny' });
  assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(r.err?.details, 'not for you');
});

test('gRPC server streaming, client streaming and bidi streaming', async (t) => {
  const { c } = await setup(t);
  const got: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = c.serverStream({ n: 5 }) as grpc.ClientReadableStream<Msg>;
    call.on('data', (m: Msg) => got.push(m.n));
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  assert.deepEqual(got, [0, 1, 2, 3, 4]);

  const sum = await new Promise<Msg>((resolve, reject) => {
    const call = c.clientStream((err: grpc.ServiceError | null, res?: Msg) => (err ? reject(err) : resolve(res!))) as grpc.ClientWritableStream<Msg>;
    for (let i = 1; i <= 10; i++) call.write({ n: i });
    call.end();
  });
  assert.deepEqual(sum, { n: 55 });

  // Bidi: each answer arrives before the next message is sent (true interleaving, not buffering).
  const call = c.bidi() as grpc.ClientDuplexStream<Msg, Msg>;
  const answers: number[] = [];
  for (let i = 0; i < 3; i++) {
    const answer = new Promise<Msg>((resolve) => call.once('data', resolve));
    call.write({ n: i });
    answers.push((await answer).n);
  }
  const ended = new Promise<void>((resolve) => call.on('end', () => resolve()));
  call.on('data', () => {});
  call.end();
  await ended;
  assert.deepEqual(answers, [100, 101, 102]);
});

test('gRPC local errors are gRPC statuses: no route → UNIMPLEMENTED, upstream down → UNAVAILABLE, timeout → DEADLINE_EXCEEDED', async (t) => {
  const dead = await closedPort();
  const g = await startGrpcServer();
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: {
      down: { protocol: 'h2c', servers: [`http://127.0.0.1:${dead}`] },
      slow: { protocol: 'h2c', servers: [`http://127.0.0.1:${g.port}`], timeouts: { response_header: '200ms' } },
    },
    routes: [
      { match: { host: 'down.test' }, upstream: 'down' },
      { match: { host: 'slow.test' }, upstream: 'slow' },
    ],
  });
  const mk = (host: string) =>
    new EchoClient(`127.0.0.1:${u.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': host }) as unknown as EchoClientT;
  const none = mk('none.test');
  const down = mk('down.test');
  const slow = mk('slow.test');
  t.after(async () => {
    for (const c of [none, down, slow]) c.close();
    await u.close();
    await g.close();
  });
  const r1 = await unary(none, { n: 1 });
  assert.equal(r1.err?.code, grpc.status.UNIMPLEMENTED);
  assert.match(r1.err!.details, /no_route/);
  assert.ok(r1.trailers?.get('x-request-id')[0], 'the request id is in the status metadata');
  const r2 = await unary(down, { n: 1 });
  assert.equal(r2.err?.code, grpc.status.UNAVAILABLE);
  assert.match(r2.err!.details, /upstream_connect_refused/);
  const r3 = await unary(slow, { n: 1, text: 'hang' });
  assert.equal(r3.err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.match(r3.err!.details, /upstream_timeout/);
});

test('gRPC over TLS: ALPN h2 on a TLS listener, grpc-js with the listener certificate as root', async (t) => {
  const g = await startGrpcServer();
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls: { cert: CERT_FILE, key: KEY_FILE }, http2: {} }],
    upstreams: { grpc: { protocol: 'h2c', servers: [`http://127.0.0.1:${g.port}`] } },
    routes: [{ upstream: 'grpc' }],
  });
  const c = new EchoClient(`localhost:${u.port}`, grpc.credentials.createSsl(readFileSync(CERT_FILE))) as unknown as EchoClientT;
  t.after(async () => {
    c.close();
    await u.close();
    await g.close();
  });
  const r = await unary(c, { n: 5 });
  assert.equal(r.err, null);
  assert.equal(r.res?.n, 10);
  assert.deepEqual(r.trailers?.get('x-trailer'), ['from-server']);
});
