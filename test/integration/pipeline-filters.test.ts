// Test-only filters added through UsherOptions.filters, over real sockets (a real usher in front
// of a real upstream): an async request filter that goes on and one that answers locally,
// async head phases, a request_body inspector, and a response_body transform that changes the
// length — with a large streamed response to show the transform keeps backpressure.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import type { RouteFilterDefinition } from '../../src/pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse } from '../../src/pipeline/types.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const BIG = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'a');

/** What the upstream saw of each request body, by path. */
const bodies = new Map<string, Buffer>();
let bigWritten = 0;

/** Echoes what it received (body and the header filters add); /big streams BIG bytes with backpressure. */
function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    bodies.set(req.url!, body);
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BIG) });
      const pump = (): void => {
        while (bigWritten < BIG) {
          bigWritten += CHUNK.length;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (req.url!.endsWith('/204')) {
      res.writeHead(204, { 'x-saw-async': String(req.headers['x-async'] ?? '') });
      return void res.end();
    }
    const text = req.url!.startsWith('/transform') ? 'hello, world' : `seen ${body.length}`;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': String(Buffer.byteLength(text)),
      'x-saw-async': String(req.headers['x-async'] ?? ''),
      'x-saw-length': String(req.headers['content-length'] ?? ''),
    });
    res.end(text);
  });
}

const seenState = stateKey<string>('test.async');

/** Builds a definition whose filter applies to the routes named in `routes` only. */
function only(name: string, routes: string[], make: () => Filter): RouteFilterDefinition {
  return { name, create: (rc) => (routes.includes(rc.name) ? make() : undefined) };
}

/** Uppercases the body and appends "!!" at the end: the length changes. */
class Shout extends Transform {
  seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    cb(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
  }
  override _flush(cb: TransformCallback): void {
    cb(null, Buffer.from('!!'));
  }
}
const shouts: Shout[] = [];

const FILTERS: RouteFilterDefinition[] = [
  // request: awaits a turn of the event loop and a timer, keeps state, then lets the request go on.
  only('async_ok', ['async'], () => ({
    name: 'async_ok',
    async request(ctx) {
      await nextTurn();
      await delay(1);
      ctx.set(seenState, `awaited ${ctx.method} ${ctx.request!.path}`);
    },
    // upstream_request, upstream_response and response: each awaited, each sees the earlier state.
    async upstreamRequest(ctx, head) {
      await nextTurn();
      head.headers.push('x-async', ctx.get(seenState) ?? 'lost');
    },
    async upstreamResponse(_ctx, head) {
      await nextTurn();
      head.headers.push('x-upstream-response', String(head.status));
    },
  })),
  // request: answers 401 locally, after an await (or at once on /deny-now).
  only('deny', ['deny', 'deny-now'], () => ({
    name: 'deny',
    request(ctx): LocalResponse | Promise<LocalResponse> {
      const reply: LocalResponse = { status: 401, headers: ['www-authenticate', 'Basic realm="test"', 'content-type', 'text/plain'], body: 'who are you?' };
      if (ctx.route!.name === 'deny-now') return { ...reply, status: 405, reason: 'method_not_allowed' };
      return nextTurn().then(() => reply);
    },
  })),
  // request_body: denies a body that holds "forbidden" (sync), passes the others untouched.
  only('inspect', ['inspect'], () => ({
    name: 'inspect',
    requestBody: {
      maxBytes: 1024,
      inspect: (_ctx, body) => (body.includes('forbidden') ? { status: 403, body: 'no such words' } : undefined),
    },
  })),
  // request_body: after an await, replaces the body (the upstream gets the new one, with its length).
  only('replace', ['replace'], () => ({
    name: 'replace',
    requestBody: {
      maxBytes: 1024,
      inspect: async (_ctx, body) => {
        await nextTurn();
        return Buffer.from(`[${body.toString('latin1').toUpperCase()}]`, 'latin1');
      },
    },
  })),
  // response_body: a transform that changes the length.
  only('shout', ['transform', 'big'], () => ({
    name: 'shout',
    responseBody: () => {
      const t = new Shout();
      shouts.push(t);
      return t;
    },
  })),
  // response (every route): marks each head, proxied or local, after an await.
  {
    name: 'mark',
    create: () => ({
      name: 'mark',
      async response(ctx, head) {
        await nextTurn();
        head.headers.push('x-response-phase', `${head.local ? 'local' : 'proxied'} ${ctx.requestId}`);
      },
    }),
  },
];

const ROUTES = ['async', 'deny', 'deny-now', 'inspect', 'replace', 'transform', 'big'].map((name) => ({ name, match: { path: `/${name}` }, upstream: 'app' }));

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app', upstreamHandler);
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: ROUTES }, { filters: FILTERS });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

/** A chunked upload (no Content-Length): the body is written in pieces. */
function chunked(url: string, pieces: string[]): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    for (const p of pieces) req.write(p);
    req.end();
  });
}

test('an async request filter lets the request go on; async upstream_request, upstream_response and response hooks edit the heads', async (t) => {
  const { u } = await setup(t);
  const r = await request(`${u.url}/async/x`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-saw-async'], 'awaited GET /async/x', 'state set in request reached upstream_request');
  assert.equal(r.headers['x-upstream-response'], '200');
  assert.equal(r.headers['x-response-phase'], `proxied ${r.headers['x-request-id']}`);
  assert.equal(r.body, 'seen 0');
  // Bodyless answers (HEAD, 204): undici completes them while the head is still in the hooks.
  const head = await request(`${u.url}/async/x`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '6', "the GET's length, as the upstream sent it");
  assert.equal(head.headers['x-upstream-response'], '200');
  assert.equal(head.headers['x-response-phase'], `proxied ${head.headers['x-request-id']}`);
  const empty = await request(`${u.url}/async/204`);
  assert.equal(empty.status, 204);
  assert.equal(empty.headers['x-saw-async'], 'awaited GET /async/204');
  assert.equal(empty.headers['x-upstream-response'], '204');
  assert.equal(empty.headers['x-response-phase'], `proxied ${empty.headers['x-request-id']}`);
});

test('a 204 or 304 whose head waits in an async upstream_response hook leaves its upstream connection reusable', async (t) => {
  const { up, u } = await setup(t);
  let connections = 0;
  up.server.on('connection', () => connections++);
  // undici was paused by the hook and, the try being complete at its head, never resumed: the
  // connection stayed busy (each next request opened another) and a graceful close waited 30 s.
  for (let i = 0; i < 3; i++) {
    const r = await request(`${u.url}/async/204`);
    assert.equal(r.status, 204);
    assert.equal(r.headers['x-upstream-response'], '204');
  }
  const after = await request(`${u.url}/async/x`);
  assert.equal(after.status, 200);
  assert.equal(connections, 1, 'every request went over the one upstream connection');
});

test('a request filter that answers 401: X-Request-Id, the response phase ran on it, the access log has its reason', async (t) => {
  const { up, u } = await setup(t);
  const r = await request(`${u.url}/deny`);
  assert.equal(r.status, 401);
  assert.equal(r.body, 'who are you?');
  assert.equal(r.headers['www-authenticate'], 'Basic realm="test"');
  const id = r.headers['x-request-id'];
  assert.ok(typeof id === 'string' && id.length > 0, 'a local reply carries the request id');
  assert.equal(r.headers['x-response-phase'], `local ${id}`, 'the local reply passed the response phase');
  // The synchronous variant, with its own reason code.
  const now = await request(`${u.url}/deny-now`);
  assert.equal(now.status, 405);
  assert.equal(now.headers['x-response-phase'], `local ${now.headers['x-request-id']}`);
  assert.equal(up.requests.length, 0, 'nothing was proxied');
  await waitFor(() => u.access.length === 2, 5000, 'access log');
  assert.deepEqual(
    u.access.map((l) => [l.request_id, l.status, l.reason, l.route]),
    [
      [id, 401, 'local_response', 'deny'],
      [now.headers['x-request-id'], 405, 'method_not_allowed', 'deny-now'],
    ],
  );
});

test('a request_body inspector denies a body with a word (403), passes the others exactly (also chunked), 413 past its bound', async (t) => {
  const { u } = await setup(t);
  const denied = await request(`${u.url}/inspect/a`, { method: 'POST', body: 'some forbidden words' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'no such words');
  assert.equal(denied.headers['x-response-phase'], `local ${denied.headers['x-request-id']}`);
  assert.equal(bodies.has('/inspect/a'), false, 'a denied body is not proxied');

  const body = 'harmless words\r\n\u00e9\0'.repeat(20);
  const passed = await request(`${u.url}/inspect/b`, { method: 'POST', body });
  assert.equal(passed.status, 200);
  assert.ok(bodies.get('/inspect/b')!.equals(Buffer.from(body)), 'the upstream got the exact body');

  const pieces = ['first piece, ', 'second piece, ', 'x'.repeat(500)];
  const viaChunks = await chunked(`${u.url}/inspect/c`, pieces);
  assert.equal(viaChunks.status, 200);
  assert.equal(bodies.get('/inspect/c')!.toString('latin1'), pieces.join(''), 'a chunked upload arrives whole and exact');
  assert.equal(viaChunks.headers['x-saw-length'], String(pieces.join('').length), 'sent with its Content-Length once read whole');
  const deniedChunks = await chunked(`${u.url}/inspect/d`, ['this is for', 'bidden? no: forbidden']);
  assert.equal(deniedChunks.status, 403);

  const tooLarge = await request(`${u.url}/inspect/e`, { method: 'POST', body: 'x'.repeat(1025) });
  assert.equal(tooLarge.status, 413);
  assert.match(tooLarge.body, /reason: body_too_large/);
  const tooLargeChunks = await chunked(`${u.url}/inspect/f`, ['x'.repeat(600), 'y'.repeat(600)]);
  assert.equal(tooLargeChunks.status, 413);
  assert.equal(bodies.has('/inspect/e') || bodies.has('/inspect/f'), false);
  const exact = await request(`${u.url}/inspect/g`, { method: 'POST', body: 'x'.repeat(1024) });
  assert.equal(exact.status, 200, 'maxBytes itself is allowed');
});

test('a request_body filter may replace the body after an await: the upstream gets the new bytes and length', async (t) => {
  const { u } = await setup(t);
  const r = await request(`${u.url}/replace`, { method: 'PUT', body: 'abc' });
  assert.equal(r.status, 200);
  assert.equal(bodies.get('/replace')!.toString(), '[ABC]');
  assert.equal(r.headers['x-saw-length'], '5');
  const viaChunks = await chunked(`${u.url}/replace`, ['d', 'e']);
  assert.equal(viaChunks.status, 200);
  assert.equal(bodies.get('/replace')!.toString(), '[DE]');
});

test('a response_body transform that changes the length: Content-Length removed, the client gets the transformed body', async (t) => {
  const { u } = await setup(t);
  const r = await request(`${u.url}/transform`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'HELLO, WORLD!!');
  assert.equal(r.headers['content-length'], undefined, "the upstream's length no longer holds");
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  // A HEAD has no body to transform: its Content-Length describes the GET's and stays.
  const head = await request(`${u.url}/transform`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '12');
});

test('a response_body transform keeps backpressure: a client that does not read holds the upstream back', async (t) => {
  const { u } = await setup(t);
  bigWritten = 0;
  const { received, stalledAt } = await new Promise<{ received: number; stalledAt: number }>((resolve, reject) => {
    const req = httpRequest(`${u.url}/big`, { agent: false }, (res) => {
      res.pause();
      // The pipes fill while the client reads nothing. "Held back": the upstream made no progress
      // over five consecutive samples (a CPU hiccup is shorter); then the client reads it all.
      let last = -1;
      let still = 0;
      const settle = setInterval(() => {
        still = bigWritten === last && bigWritten > 0 ? still + 1 : 0;
        last = bigWritten;
        if (still < 5 && bigWritten < BIG) return;
        clearInterval(settle);
        const at = bigWritten;
        let n = 0;
        let lower = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          for (let i = 0; i < c.length; i += 4096) if (c[i] === 0x61) lower++;
        });
        res.on('end', () => (lower === 0 ? resolve({ received: n, stalledAt: at }) : reject(new Error(`${lower} untransformed bytes`))));
        res.resume();
      }, 50);
    });
    req.on('error', reject);
    req.end();
  });
  t.diagnostic(`the upstream stalled after ${Math.round(stalledAt / 1048576)} MiB of ${BIG / 1048576} MiB`);
  assert.ok(stalledAt < BIG / 2, `the upstream was held back (it wrote ${stalledAt} of ${BIG} bytes while the client read nothing)`);
  assert.equal(received, BIG + 2, 'every byte, transformed, plus the two appended');
  assert.equal(shouts.at(-1)!.seen, BIG);
});

test('a request_body bound larger than limits.body does not lift limits.body (a chunked upload past it: 413)', async (t) => {
  const up = await startUpstream('app', upstreamHandler);
  const lenient: RouteFilterDefinition = { name: 'lenient', create: () => ({ name: 'lenient', requestBody: { maxBytes: 1024 * 1024, inspect: () => undefined } }) };
  const u = await startUsher({ limits: { body: 1024 }, upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] }, { filters: [lenient] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const r = await chunked(`${u.url}/limited`, ['x'.repeat(3000), 'y'.repeat(3000)]);
  assert.equal(r.status, 413);
  assert.match(r.body, /reason: body_too_large/);
  assert.equal(bodies.has('/limited'), false);
  const small = await chunked(`${u.url}/small`, ['x'.repeat(500), 'y'.repeat(500)]);
  assert.equal(small.status, 200);
  assert.equal(bodies.get('/small')!.length, 1000);
});
