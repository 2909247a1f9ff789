// usher's own replies to gRPC calls (Trailers-Only: HTTP 200, grpc-status in the one HEADERS
// frame, src/proxy/grpc.ts) pass the response phase like every other head: test-only response
// filters (route and listener, sync and awaited) add fields, and the reply stays one HEADERS
// frame with END_STREAM that a gRPC client reads as a status. Over real sockets.
import assert from 'node:assert/strict';
import { constants, type IncomingHttpHeaders } from 'node:http2';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ListenerFilterDefinition, RouteFilterDefinition } from '../../src/pipeline/registry.js';
import type { Filter, ResponseHead } from '../../src/pipeline/types.js';
import { h2session } from '../helpers/h2.js';
import { closedPort } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const grpcStatusOf = (head: ResponseHead): string => {
  const i = head.headers.findIndex((n, k) => k % 2 === 0 && n.toLowerCase() === 'grpc-status');
  return i < 0 ? '-' : head.headers[i + 1]!;
};

const dones = new Map<string, number>();
const filters: RouteFilterDefinition[] = [
  {
    name: 'test_route',
    create: (): Filter => ({
      name: 'test_route',
      async response(ctx, head) {
        if (ctx.route?.name === 'async') await new Promise((resolve) => setTimeout(resolve, 20));
        if (ctx.route?.name === 'broken') throw new Error('broken response filter');
        head.headers.push('x-route-response', `${head.status} ${grpcStatusOf(head)} ${head.local ? 'local' : 'proxied'}`);
      },
    }),
  },
];
const listenerFilters: ListenerFilterDefinition<undefined>[] = [
  {
    name: 'test_listener',
    create: (): Filter => ({
      name: 'test_listener',
      response: (_ctx, head) => void head.headers.push('x-listener-response', grpcStatusOf(head)),
      done: (ctx) => void dones.set(ctx.requestId, (dones.get(ctx.requestId) ?? 0) + 1),
    }),
  },
];

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<TestUsher> {
  const dead = await closedPort();
  const down = { protocol: 'h2c', servers: [`http://127.0.0.1:${dead}`] };
  const u = await startUsher(
    {
      listeners: [{ address: '127.0.0.1:0', http2: {} }],
      upstreams: { down },
      routes: ['down', 'async', 'broken'].map((name) => ({ name, match: { host: `${name}.test` }, upstream: 'down' })),
    },
    { filters, listenerFilters },
  );
  t.after(() => u.close());
  return u;
}

/** A unary call through a generic client: the status and its metadata (a Trailers-Only reply's head). */
async function call(u: TestUsher, host: string): Promise<{ code: number; details: string; md: grpc.Metadata }> {
  const Client = grpc.makeGenericClientConstructor({}, 'Test');
  const c = new Client(`127.0.0.1:${u.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': host });
  try {
    return await new Promise((resolve) => {
      const ser = (v: unknown) => Buffer.from(JSON.stringify(v));
      const call = c.makeUnaryRequest('/test.Echo/Unary', ser, (b: Buffer) => b, {}, () => {});
      call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, md: s.metadata }));
    });
  } finally {
    c.close();
  }
}

test('gRPC local replies pass the response phase (route and listener filters, sync and awaited) and stay Trailers-Only', async (t) => {
  const u = await setup(t);
  const unavailable = String(grpc.status.UNAVAILABLE);
  for (const route of ['down', 'async']) {
    const r = await call(u, `${route}.test`);
    assert.equal(r.code, grpc.status.UNAVAILABLE, route);
    assert.match(r.details, /upstream_connect_refused/);
    assert.equal(r.md.get('x-route-response')[0], `200 ${unavailable} local`, `${route}: the route response hook saw the gRPC reply`);
    assert.equal(r.md.get('x-listener-response')[0], unavailable, `${route}: the listener response hook too`);
    assert.ok(r.md.get('x-request-id')[0]);
  }
  // No route: only the listener's response hook (a route's filters need a route).
  const none = await call(u, 'none.test');
  assert.equal(none.code, grpc.status.UNIMPLEMENTED);
  assert.equal(none.md.get('x-listener-response')[0], String(grpc.status.UNIMPLEMENTED));
  assert.equal(none.md.get('x-route-response').length, 0);

  // On the wire: one HEADERS frame that ends the stream — no DATA, no separate trailers.
  const session = await h2session(u.url);
  t.after(() => session.close());
  const stream = session.request({ ':method': 'POST', ':path': '/test.Echo/Unary', ':authority': 'async.test', 'content-type': 'application/grpc', te: 'trailers' });
  const seen = await new Promise<{ head: IncomingHttpHeaders; flags: number; data: number; trailers: boolean }>((resolve, reject) => {
    let head: IncomingHttpHeaders = {};
    let flags = 0;
    let data = 0;
    let trailers = false;
    stream.on('response', (h, f) => {
      head = h;
      flags = f;
    });
    stream.on('data', (c: Buffer) => (data += c.length));
    stream.on('trailers', () => (trailers = true));
    stream.on('end', () => resolve({ head, flags, data, trailers }));
    stream.on('error', reject);
    stream.end();
  });
  assert.equal(seen.head[':status'], 200);
  assert.equal(seen.head['content-type'], 'application/grpc');
  assert.equal(seen.head['grpc-status'], unavailable);
  assert.equal(seen.head['x-route-response'], `200 ${unavailable} local`);
  assert.equal(seen.head['x-listener-response'], unavailable);
  assert.equal(seen.flags & constants.NGHTTP2_FLAG_END_STREAM, constants.NGHTTP2_FLAG_END_STREAM, 'END_STREAM on the HEADERS frame');
  assert.equal(seen.data, 0);
  assert.equal(seen.trailers, false);

  await waitFor(() => u.access.length === 4, 5000, 'four access-log lines');
  for (const line of u.access) assert.equal(dones.get(line.request_id as string), 1, 'done once');
});

test('a response filter that fails on a gRPC local reply: the client gets grpc-status INTERNAL, not an HTML 500', async (t) => {
  const u = await setup(t);
  const r = await call(u, 'broken.test');
  assert.equal(r.code, grpc.status.INTERNAL);
  assert.match(r.details, /internal_error/);
  assert.ok(r.md.get('x-request-id')[0]);
  await waitFor(() => u.access.length === 1, 5000, 'the access-log line');
  assert.equal(u.access[0]!.reason, 'internal_error');
});
