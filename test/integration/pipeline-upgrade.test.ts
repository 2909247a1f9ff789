// Upgrades walk the same phases as any request (docs/filters.md): early_request, request and
// upstream_request before the upstream is asked; the response phase on the head that goes
// downstream — the upstream's 101 (200 on an HTTP/2 extended CONNECT), a refusal relayed, or
// usher's own reply when the upgrade cannot be made; done once, when the tunnel closes or the
// refusal is sent. Test-only filters record what they saw and mark the heads; a route's
// response_headers rule (a built-in response filter) edits the 101 too. Over real sockets.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { ListenerFilterDefinition, RouteFilterDefinition } from '../../src/pipeline/registry.js';
import type { Filter, RequestContext } from '../../src/pipeline/types.js';
import { rawRequest, rawStatus } from '../helpers/client.js';
import { h2session } from '../helpers/h2.js';
import { closedPort } from '../helpers/upstream.js';
import { decodeFrames, encodeFrame, OP } from '../helpers/ws-frames.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

/** What the test filters saw, per request id. */
class Seen {
  readonly phases = new Map<string, string[]>();
  readonly done = new Map<string, number>();
  /** The 'hold' route's response hook waits for this. */
  release: () => void = () => {};
  readonly held = new Promise<void>((resolve) => (this.release = resolve));
  note(ctx: RequestContext, what: string): void {
    const list = this.phases.get(ctx.requestId) ?? [];
    list.push(what);
    this.phases.set(ctx.requestId, list);
  }
  ended(ctx: RequestContext): void {
    this.done.set(ctx.requestId, (this.done.get(ctx.requestId) ?? 0) + 1);
    this.note(ctx, `done ${ctx.response?.status ?? '-'} ${ctx.reason ?? '-'}`);
  }
}

function filters(seen: Seen): { filters: RouteFilterDefinition[]; listenerFilters: ListenerFilterDefinition<undefined>[] } {
  const route: Filter = {
    name: 'test_route',
    request: (ctx) => void seen.note(ctx, `request ${ctx.upgrade ?? '-'}`),
    upstreamRequest: (ctx, head) => {
      seen.note(ctx, 'upstream_request');
      head.headers.push('x-upstream-request', 'seen');
    },
    async response(ctx, head) {
      seen.note(ctx, `response ${head.status}`);
      // An awaited hook holds the 101 (the upstream's first frame must wait, not be lost).
      if (ctx.route?.name === 'async') await new Promise((resolve) => setTimeout(resolve, 30));
      if (ctx.route?.name === 'hold') await seen.held;
      if (ctx.route?.name === 'restatus') head.status = 403;
      if (ctx.route?.name === 'badfield') head.headers.push('x-bad', 'a\r\nb');
      head.headers.push('x-route-response', `${head.status} ${head.local ? 'local' : 'proxied'}`);
    },
    done: (ctx) => seen.note(ctx, 'route done'),
  };
  const listener: Filter = {
    name: 'test_listener',
    earlyRequest: (ctx) => void seen.note(ctx, 'early_request'),
    response: (_ctx, head) => void head.headers.push('x-listener-response', String(head.status)),
    done: (ctx) => seen.ended(ctx),
  };
  return { filters: [{ name: 'test_route', create: () => route }], listenerFilters: [{ name: 'test_listener', create: () => listener }] };
}

interface WsUpstream {
  url: string;
  heads: IncomingMessage[];
  /** Connections whose other side (usher) went away. */
  closed: IncomingMessage[];
  close(): Promise<void>;
}

/** A WebSocket echo server that greets each connection first; `refuse` answers the handshake 403. */
async function startWsUpstream(refuse = false): Promise<WsUpstream> {
  const server: Server = createServer((_req, res) => res.end('plain'));
  const heads: IncomingMessage[] = [];
  const closed: IncomingMessage[] = [];
  const wss = new WebSocketServer({ server, verifyClient: (_info: unknown, cb: (ok: boolean, code?: number) => void) => cb(!refuse, 403) });
  wss.on('connection', (ws, req) => {
    heads.push(req);
    ws.send('hello');
    ws.on('close', () => closed.push(req));
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    heads,
    closed,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, http2 = false): Promise<{ up: WsUpstream; refusing: WsUpstream; u: TestUsher; seen: Seen }> {
  const seen = new Seen();
  const up = await startWsUpstream();
  const refusing = await startWsUpstream(true);
  const dead = await closedPort();
  const rule = { response_headers: { set: { 'x-rule': 'on' } } };
  const u = await startUsher(
    {
      listeners: [{ address: '127.0.0.1:0', ...(http2 ? { http2: {} } : {}) }],
      upstreams: { app: { servers: [up.url] }, refusing: { servers: [refusing.url] }, down: { servers: [`http://127.0.0.1:${dead}`] } },
      routes: [
        { name: 'ws', match: { path: '/ws' }, upstream: 'app', ...rule },
        { name: 'async', match: { path: '/async' }, upstream: 'app', ...rule },
        { name: 'hold', match: { path: '/hold' }, upstream: 'app' },
        { name: 'restatus', match: { path: '/restatus' }, upstream: 'app' },
        { name: 'badfield', match: { path: '/badfield' }, upstream: 'app' },
        { name: 'refused', match: { path: '/refused' }, upstream: 'refusing', ...rule },
        { name: 'down', match: { path: '/down' }, upstream: 'down', ...rule },
      ],
    },
    filters(seen),
  );
  t.after(async () => {
    await u.close(200);
    await up.close();
    await refusing.close();
  });
  return { up, refusing, u, seen };
}

/** Opens a WebSocket; resolves with the 101's head and the first message (the upstream's greeting). */
function open(url: string): Promise<{ ws: WebSocket; head: IncomingHttpHeaders; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let head: IncomingHttpHeaders = {};
    ws.once('upgrade', (res) => (head = res.headers));
    ws.once('message', (data) => resolve({ ws, head, first: (data as Buffer).toString() }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** A WebSocket the server side refuses: the status and head of the refusal. */
function refused(url: string): Promise<{ status: number; head: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode!, head: res.headers });
    });
    ws.on('open', () => reject(new Error('the upgrade should have been refused')));
    ws.on('error', () => {});
  });
}

async function closeWs(ws: WebSocket): Promise<void> {
  const closed = new Promise((resolve) => ws.once('close', resolve));
  ws.close();
  await closed;
}

/** The request id of the access-log line for `path` (the line is written by done). */
async function idOf(u: TestUsher, path: string): Promise<string> {
  await waitFor(() => u.access.some((l) => l.path === path), 5000, `the access-log line of ${path}`);
  return u.access.find((l) => l.path === path)!.request_id as string;
}

test('a WebSocket upgrade walks every phase: the 101 passes the response phase (route filters, response_headers, listener filters), done once on close', async (t) => {
  const { up, u, seen } = await setup(t);
  const { ws, head, first } = await open(`ws://127.0.0.1:${u.port}/ws`);
  assert.equal(first, 'hello');
  assert.equal(head['x-route-response'], '101 proxied', 'the route response hook saw and edited the 101');
  assert.equal(head['x-rule'], 'on', 'response_headers applies to the 101');
  assert.equal(head['x-listener-response'], '101', 'the listener response hook ran after the route');
  assert.equal(head.upgrade, 'websocket');
  assert.equal(up.heads[0]!.headers['x-upstream-request'], 'seen', 'upstream_request edited the upgrade request');
  ws.send('echo me');
  assert.equal((await new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)))).toString(), 'echo me');
  const id = head['x-request-id'] as string;
  assert.equal(seen.done.get(id), undefined, 'done waits for the tunnel to close');
  await closeWs(ws);
  await waitFor(() => seen.done.get(id) === 1, 5000, 'done after the tunnel closed');
  assert.deepEqual(seen.phases.get(id), ['early_request', 'request websocket', 'upstream_request', 'response 101', 'route done', 'done 101 -']);
  await u.close(200);
  assert.equal(seen.done.get(id), 1, 'done once');
});

test('an awaited response hook holds the 101: the upstream\'s first frame waits and is not lost', async (t) => {
  const { u, seen } = await setup(t);
  for (let i = 0; i < 3; i++) {
    const { ws, head, first } = await open(`ws://127.0.0.1:${u.port}/async`);
    assert.equal(first, 'hello', 'the greeting the upstream sent right after its 101 arrived');
    assert.equal(head['x-route-response'], '101 proxied');
    assert.equal(head['x-rule'], 'on');
    ws.send('after');
    assert.equal((await new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)))).toString(), 'after');
    await closeWs(ws);
    const id = head['x-request-id'] as string;
    await waitFor(() => seen.done.get(id) === 1, 5000, 'done after close');
  }
});

test('refused and failed upgrades pass the response phase and done once: upstream 403, upstream down (502), not allowed (400)', async (t) => {
  const { u, seen } = await setup(t);
  const r403 = await refused(`ws://127.0.0.1:${u.port}/refused`);
  assert.equal(r403.status, 403);
  assert.equal(r403.head['x-route-response'], '403 proxied');
  assert.equal(r403.head['x-rule'], 'on');
  assert.equal(r403.head['x-listener-response'], '403');

  const r502 = await refused(`ws://127.0.0.1:${u.port}/down`);
  assert.equal(r502.status, 502);
  assert.equal(r502.head['x-route-response'], '502 local');
  assert.equal(r502.head['x-rule'], 'on');
  assert.equal(r502.head['x-listener-response'], '502');

  const notAllowed = await rawRequest(u.port, 'GET /ws HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  assert.equal(rawStatus(notAllowed), 400);
  assert.match(notAllowed, /\r\nx-listener-response: 400\r\n/i, 'the listener response hook ran on the refusal');

  const id403 = await idOf(u, '/refused');
  const id502 = await idOf(u, '/down');
  await waitFor(() => u.access.length === 3, 5000, 'three access-log lines');
  const idNotAllowed = u.access.find((l) => l.reason === 'upgrade_not_allowed')!.request_id as string;
  await u.close(200);
  assert.deepEqual(seen.phases.get(id403), ['early_request', 'request websocket', 'upstream_request', 'response 403', 'route done', 'done 403 -']);
  assert.deepEqual(seen.phases.get(id502), ['early_request', 'request websocket', 'upstream_request', 'response 502', 'route done', 'done 502 upstream_connect_refused']);
  // Refused by the HTTP-level checks before the phases start, as a request without Host is.
  assert.deepEqual(seen.phases.get(idNotAllowed), ['done 400 upgrade_not_allowed']);
  for (const id of [id403, id502, idNotAllowed]) assert.equal(seen.done.get(id), 1);
});

test('a response hook that breaks the 101 (changes its status, or adds a field node refuses): 500 internal_error, no tunnel', async (t) => {
  const { u, seen } = await setup(t);
  for (const path of ['/restatus', '/badfield']) {
    const r = await refused(`ws://127.0.0.1:${u.port}${path}`);
    assert.equal(r.status, 500, path);
    const id = await idOf(u, path);
    assert.equal(u.access.find((l) => l.path === path)!.reason, 'internal_error');
    await waitFor(() => seen.done.get(id) === 1, 5000, `done for ${path}`);
  }
  await waitFor(() => u.usher.inflight === 0, 5000, 'nothing left in flight');
});

test('a client that leaves while a response hook holds the 101: the upstream connection is closed once it goes out, done once', async (t) => {
  const { up, u, seen } = await setup(t);
  const key = Buffer.from('0123456789abcdef').toString('base64');
  const socket = connect(u.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET /hold HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
  await waitFor(() => up.heads.length === 1, 5000, 'the upstream accepted the upgrade');
  // usher reads nothing more from an upgrade's client before the tunnel opens (those bytes are
  // the tunnel's), so it learns that the client left when the held 101 goes out.
  socket.destroy();
  await new Promise((resolve) => socket.once('close', resolve));
  seen.release();
  await waitFor(() => up.closed.length === 1, 5000, 'the upstream connection closed');
  const id = await idOf(u, '/hold');
  await u.close(200);
  assert.equal(seen.done.get(id), 1);
  // The 101 was written (into a connection the client had closed) and the tunnel closed at once.
  assert.deepEqual(seen.phases.get(id), ['early_request', 'request websocket', 'upstream_request', 'response 101', 'route done', 'done 101 -']);
});

test('WebSocket over HTTP/2: the 200 that opens the tunnel passes the response phase; done once when the stream ends', async (t) => {
  const { u, seen } = await setup(t, true);
  const session = await h2session(u.url);
  t.after(() => session.destroy());
  await waitFor(() => session.remoteSettings.enableConnectProtocol === true, 2000, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const stream = session.request(
    { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/ws', ':authority': 'chat.test', 'sec-websocket-version': '13' },
    { endStream: false },
  );
  const head = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
    stream.once('response', (h) => resolve(h));
    stream.once('error', reject);
  });
  assert.equal(head[':status'], 200);
  assert.equal(head['x-route-response'], '200 proxied');
  assert.equal(head['x-rule'], 'on');
  assert.equal(head['x-listener-response'], '200');
  let buf: Buffer = Buffer.alloc(0);
  const frames: { opcode: number; payload: Buffer }[] = [];
  stream.on('data', (c: Buffer) => {
    const d = decodeFrames(Buffer.concat([buf, c]));
    buf = d.rest;
    frames.push(...d.frames);
  });
  stream.write(encodeFrame(OP.TEXT, Buffer.from('over h2')));
  await waitFor(() => frames.length >= 2, 5000, 'greeting and echo');
  assert.deepEqual(frames.map((f) => f.payload.toString()), ['hello', 'over h2']);
  stream.end();
  const id = head['x-request-id'] as string;
  await waitFor(() => seen.done.get(id) === 1, 5000, 'done after the stream ended');
  assert.deepEqual(seen.phases.get(id), ['early_request', 'request websocket', 'upstream_request', 'response 200', 'route done', 'done 200 -']);
});

test('an HTTP/1.1 CONNECT (usher is no forward proxy) is refused as a request: 405 passes the response phase, is logged, done once', async (t) => {
  const { u, seen } = await setup(t);
  const reply = await rawRequest(u.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  assert.equal(rawStatus(reply), 405);
  assert.match(reply, /reason: method_not_allowed/);
  assert.match(reply, /\r\nx-listener-response: 405\r\n/i, 'the listener response hook ran on the refusal');
  await waitFor(() => u.access.length === 1, 5000, 'the access-log line');
  assert.equal(u.access[0]!.reason, 'method_not_allowed');
  const id = u.access[0]!.request_id as string;
  await u.close(200);
  assert.deepEqual(seen.phases.get(id), ['done 405 method_not_allowed']);
});
