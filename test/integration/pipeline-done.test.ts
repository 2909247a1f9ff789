// The done phase runs exactly once per request, whatever happened: a test-only counter as a
// listener filter (every request, routed or not) and as a route filter (routed requests), over
// real sockets, for a success, a local reply, no route, a refused head, a failed filter, a client
// that goes away mid-response, a WebSocket, an HTTP/2 stream reset by the client and an upstream
// timeout. Counted against the access log, after usher closed (every request has ended by then).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { constants } from 'node:http2';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { ListenerFilterDefinition, RouteFilterDefinition } from '../../src/pipeline/registry.js';
import type { Filter, RequestContext } from '../../src/pipeline/types.js';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { h2session } from '../helpers/h2.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

interface Ended {
  reason: string | undefined;
  status: number | undefined;
  route: string | undefined;
}

class Counter {
  /** done calls per request id. */
  readonly calls = new Map<string, number>();
  readonly ended = new Map<string, Ended>();
  done(ctx: RequestContext): void {
    this.calls.set(ctx.requestId, (this.calls.get(ctx.requestId) ?? 0) + 1);
    this.ended.set(ctx.requestId, { reason: ctx.reason, status: ctx.response?.status, route: ctx.route?.name });
  }
}

test('done runs exactly once per request: success, local reply, no route, bad head, failed filter, client abort, WebSocket, HTTP/2 reset, upstream timeout', async (t) => {
  const everyRequest = new Counter();
  const routed = new Counter();
  const listenerFilters: ListenerFilterDefinition<undefined>[] = [{ name: 'count_all', create: (): Filter => ({ name: 'count_all', done: (ctx) => everyRequest.done(ctx) }) }];
  const filters: RouteFilterDefinition[] = [
    {
      name: 'count_routed',
      create: (): Filter => ({
        name: 'count_routed',
        request: (ctx) => {
          if (ctx.route!.name === 'deny') return { status: 401, body: 'no' };
          if (ctx.route!.name === 'broken') throw new Error('broken filter');
          return undefined;
        },
        done: (ctx) => routed.done(ctx),
      }),
    },
  ];

  const held: (() => void)[] = [];
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    if (req.url!.startsWith('/slow')) {
      // Head and part of the body, then the rest only when the test says so (never, here).
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x'.repeat(1000));
      held.push(() => res.destroy());
      return;
    }
    if (req.url!.startsWith('/hang')) return void held.push(() => res.destroy());
    res.end('ok');
  });
  const wss = new WebSocketServer({ server: up.server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
  const routes = ['deny', 'broken', 'slow', 'ws'].map((name) => ({ name, match: { path: `/${name}` }, upstream: 'app' }));
  const u = await startUsher(
    {
      listeners: [{ address: '127.0.0.1:0', http2: {} }],
      upstreams: {
        app: { servers: [up.url] },
        hanging: { servers: [up.url], timeouts: { response_header: '200ms' } },
      },
      routes: [...routes, { name: 'hang', match: { path: '/hang' }, upstream: 'hanging' }, { name: 'ok', match: { path: '/ok' }, upstream: 'app' }],
    },
    { filters, listenerFilters },
  );
  let closed = false;
  t.after(async () => {
    if (!closed) await u.close(200);
    held.forEach((h) => h());
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await up.close();
  });

  // Success, local reply, no route, a filter that throws.
  assert.equal((await request(`${u.url}/ok`)).status, 200);
  assert.equal((await request(`${u.url}/deny`)).status, 401);
  assert.equal((await request(`${u.url}/nothing`)).status, 404);
  assert.equal((await request(`${u.url}/broken`)).status, 500);
  // A head refused before routing (HTTP/1.1 without Host).
  assert.equal(rawStatus(await rawRequest(u.port, 'GET /ok HTTP/1.1\r\nconnection: close\r\n\r\n')), 400);

  // A client that goes away mid-response.
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${u.url}/slow`, { agent: false }, (res) => res.once('data', () => req.destroy()));
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end();
  });

  // A WebSocket through usher: one request, however long the tunnel lives.
  const ws = new WebSocket(`ws://127.0.0.1:${u.port}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('ping');
  await new Promise((resolve) => ws.once('message', resolve));
  const wsClosed = new Promise((resolve) => ws.once('close', resolve));
  ws.close();
  await wsClosed;

  // An HTTP/2 stream the client resets (RST_STREAM CANCEL) once the response started.
  const session = await h2session(u.url);
  t.after(() => session.close());
  const stream = session.request({ ':path': '/slow/h2' });
  stream.on('error', () => {});
  await new Promise((resolve) => stream.once('data', resolve));
  stream.close(constants.NGHTTP2_CANCEL);

  // An upstream that never answers: 504 after timeouts.response_header.
  const timedOut = await request(`${u.url}/hang`);
  assert.equal(timedOut.status, 504);

  await waitFor(() => u.access.length === 9, 10_000, 'an access-log line for each of the 9 requests').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(u.access.map((l) => [l.path, l.status, l.reason]))}`);
  });
  await u.close(200);
  closed = true;

  const ids = u.access.map((l) => l.request_id as string);
  assert.equal(new Set(ids).size, 9, 'nine distinct requests');
  for (const id of ids) assert.equal(everyRequest.calls.get(id), 1, `done once for ${JSON.stringify(u.access.find((l) => l.request_id === id))}`);
  assert.deepEqual([...everyRequest.calls.keys()].sort(), [...ids].sort(), 'and for nothing else');

  const byPath = (path: string) => everyRequest.ended.get(u.access.find((l) => l.path === path)!.request_id as string)!;
  assert.deepEqual(byPath('/ok'), { reason: undefined, status: 200, route: 'ok' });
  assert.deepEqual(byPath('/deny'), { reason: 'local_response', status: 401, route: 'deny' });
  assert.deepEqual(byPath('/nothing'), { reason: 'no_route', status: 404, route: undefined });
  assert.deepEqual(byPath('/broken'), { reason: 'internal_error', status: 500, route: 'broken' });
  assert.equal(byPath('/slow').reason, 'downstream_aborted');
  assert.equal(byPath('/slow/h2').reason, 'downstream_aborted');
  assert.deepEqual(byPath('/ws'), { reason: undefined, status: 101, route: 'ws' });
  assert.deepEqual(byPath('/hang'), { reason: 'upstream_timeout', status: 504, route: 'hang' });
  const missingHost = u.access.find((l) => l.reason === 'missing_host');
  assert.ok(missingHost !== undefined, 'the refused head is logged');
  assert.equal(everyRequest.ended.get(missingHost.request_id as string)!.status, 400);

  // The route filter's done: once per routed request, never for the two that had no route.
  const routedIds = u.access.filter((l) => l.route !== null).map((l) => l.request_id as string);
  assert.equal(routedIds.length, 7);
  for (const id of routedIds) assert.equal(routed.calls.get(id), 1, `route done once for ${id}`);
  assert.equal(routed.calls.size, 7);
});
