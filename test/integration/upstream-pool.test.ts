// The upstream connection pool as the proxy sees it, on whichever engine is the default
// (scripts/run-tests.js runs this file on undici and on the native client, issue #17):
// keep-alive reuse, Connection: close, an idle connection the upstream closed, the
// max_connections bound, and request bodies framed both ways with backpressure.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { proxyTo, startUsher, waitFor } from '../helpers/usher.js';

test('sequential requests reuse one upstream connection; Connection: close from the upstream is honoured', async (t) => {
  const sockets = new Set<unknown>();
  const { u } = await proxyTo(t, 'a', (req, res) => {
    sockets.add(req.socket);
    req.resume();
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.end(`ok ${req.url}`);
  });
  for (let i = 0; i < 5; i++) assert.equal((await request(`${u.url}/r${i}`)).body, `ok /r${i}`);
  assert.equal(sockets.size, 1, 'five requests, one upstream connection');
  assert.equal((await request(`${u.url}/close`)).body, 'ok /close');
  assert.equal((await request(`${u.url}/after`)).body, 'ok /after');
  assert.equal(sockets.size, 2, 'the connection that said close was not reused');
});

test('an idle connection the upstream closed is not reused: the next request gets a new one (no retry needed)', async (t) => {
  let connections = 0;
  const open = new Set<Socket>();
  // Answers one request per connection with keep-alive, then closes the idle connection when told.
  const server = createServer((socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const u = await startUsher({ upstreams: { app: { servers: [url], retry: { attempts: 0 } } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  assert.equal((await request(`${u.url}/`)).status, 200);
  // The upstream closes its idle side (FIN); usher sees it before the next request.
  for (const s of open) s.end();
  await waitFor(() => open.size === 0, 5000, 'the idle connection to close');
  const r = await request(`${u.url}/`);
  assert.equal(r.status, 200, `a closed idle connection was written to: ${r.body}`);
  assert.equal(connections, 2);
});

test('pool.max_connections bounds the connections to a server; requests beyond it wait and are served', async (t) => {
  let open = 0;
  let most = 0;
  const up = await startUpstream('a', (req, res) => {
    req.resume();
    setTimeout(() => res.end(`done ${req.url}`), 20);
  });
  up.server.on('connection', (s: Socket) => {
    open++;
    most = Math.max(most, open);
    s.on('close', () => open--);
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url], pool: { max_connections: 2 } } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => request(`${u.url}/q${i}`)));
  assert.deepEqual(
    replies.map((r) => r.body),
    Array.from({ length: 8 }, (_, i) => `done /q${i}`),
  );
  assert.ok(most <= 2, `at most 2 upstream connections at once (saw ${most})`);
});

test('request bodies: a length-known body keeps its Content-Length, a chunked one goes chunked, both intact through a slow reader', async (t) => {
  const seen: { te: string | undefined; cl: string | undefined; sha: string; bytes: number }[] = [];
  const { u } = await proxyTo(t, 'a', (req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      // A slow reader: usher must hold the client back, not buffer the whole body.
      req.pause();
      setTimeout(() => req.resume(), 1);
    });
    req.on('end', () => {
      seen.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], sha: hash.digest('hex'), bytes });
      res.end('got it');
    });
  });
  const body = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const sha = createHash('sha256').update(body).digest('hex');
  for (const chunked of [false, true]) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${u.url}/upload`, { method: 'POST', agent: false, headers: chunked ? {} : { 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      // In pieces, so that a chunked upload really has several chunks.
      for (let at = 0; at < body.length; at += 100_000) req.write(body.subarray(at, at + 100_000));
      req.end();
    });
    assert.equal(status, 200);
  }
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0], { te: undefined, cl: String(body.length), sha, bytes: body.length });
  assert.deepEqual(seen[1], { te: 'chunked', cl: undefined, sha, bytes: body.length });
});
