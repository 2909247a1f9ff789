import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants, createServer as createH2cServer } from 'node:http2';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { test } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { CERT_FILE, FLAG, frame, FRAME, h2request, h2session, KEY_FILE, PREFACE, requestBlock } from '../helpers/h2.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { config, proxyTo, startUsher, waitFor } from '../helpers/usher.js';

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', ...args], (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

/** An upstream that echoes the request body and reports what it saw in headers. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-seen-bytes': String(body.length), 'set-cookie': ['s=1', 't=2'], connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    res.end(body);
  });
}

test('h2c prior knowledge: pseudo-headers become an HTTP/1.1 head, cookies joined, bodies both ways', async (t) => {
  const { up, u } = await proxyTo(t, 'a', echo, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const session = await h2session(u.url);
  t.after(() => session.close());
  const body = Buffer.alloc(300 * 1024, 7);
  const r = await h2request(session, { ':path': '/x?q=1', ':authority': 'site.test', cookie: ['a=1', 'b=2'], 'x-custom': 'v', te: 'trailers' }, body);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, body.length);
  assert.ok(r.body.equals(body), 'response body intact');
  assert.deepEqual(r.headers['set-cookie'], ['s=1', 't=2']);
  assert.equal(r.headers['keep-alive'], undefined, 'no connection-specific fields in an HTTP/2 response');
  assert.ok(r.headers['x-request-id']);
  const seen = up.requests[0]!;
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/x?q=1');
  assert.equal(seen.headers.host, 'site.test', ':authority → Host');
  assert.equal(seen.headers.cookie, 'a=1; b=2', 'cookies joined with "; " (RFC 9113 §8.2.3)');
  assert.equal(seen.headers['x-custom'], 'v');
  assert.equal(seen.headers.te, undefined);
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-host'], 'site.test');
  assert.ok(!seen.rawHeaders.some((h) => h.startsWith(':')), 'no pseudo-headers upstream');
  assert.equal(seen.headers['x-request-id'], r.headers['x-request-id']);
  // RFC 9110 §7.6.3: Via names the protocol each message was received with.
  assert.equal(seen.headers.via, '2 usher', 'the request came in over HTTP/2');
  assert.equal(r.headers.via, '1.1 usher', 'the response came in over HTTP/1.1');

  // A GET without a body: the upstream sees no body and no Transfer-Encoding.
  const g = await h2request(session, { ':path': '/get', ':authority': 'site.test' });
  assert.equal(g.status, 200);
  assert.equal(up.requests[1]!.headers['transfer-encoding'], undefined);
  assert.equal(g.headers['x-seen-bytes'], '0');

  // HTTP/1.1 on the same cleartext listener still works, keep-alive included.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const h1 = await request(`${u.url}/h1`, { headers: { cookie: 'c=3' }, agent });
  assert.equal(h1.status, 200);
  assert.equal(up.requests[2]!.headers.cookie, 'c=3');
  assert.equal(up.requests[2]!.headers.via, '1.1 usher');
  const again = await request(`${u.url}/h1b`, { agent });
  assert.equal(again.status, 200);

  // Local replies and the access log work on HTTP/2 too.
  assert.equal(u.access.filter((l) => l.status === 200).length, 4);
});

test('h2c: curl --http2-prior-knowledge', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const out = await curl(['--http2-prior-knowledge', '-w', '\\n%{http_version} %{http_code}', '-H', 'Cookie: x=1', '-H', 'Cookie: y=2', `${u.url}/curl`]);
  assert.equal(out, 'a\n2 200');
  assert.equal(up.requests[0]!.headers.cookie, 'x=1; y=2');
});

test('TLS: ALPN h2 and HTTP/1.1 on one listener; curl --http2 negotiates h2', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', tls: { cert: CERT_FILE, key: KEY_FILE }, http2: {} }] });
  const url = `https://127.0.0.1:${u.port}`;
  const session = await h2session(url);
  t.after(() => session.close());
  assert.equal((session.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2');
  const r = await h2request(session, { ':path': '/tls', ':authority': 'secure.test' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'a');
  assert.equal(up.requests[0]!.headers['x-forwarded-proto'], 'https');
  assert.equal(up.requests[0]!.headers.host, 'secure.test');

  const h1 = await new Promise<{ status: number; alpn: unknown }>((resolve, reject) => {
    const req = httpsRequest(`${url}/h1`, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, alpn: (res.socket as unknown as { alpnProtocol: unknown }).alpnProtocol }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(h1.status, 200);
  assert.notEqual(h1.alpn, 'h2');
  assert.equal(up.requests[1]!.headers['x-forwarded-proto'], 'https');

  const out = await curl(['--http2', '-k', '-w', '\\n%{http_version} %{http_code}', `${url}/curl`]);
  assert.equal(out, 'a\n2 200');
  const out1 = await curl(['--http1.1', '-k', '-w', '\\n%{http_version} %{http_code}', `${url}/curl1`]);
  assert.equal(out1, 'a\n1.1 200');
});

test('h2: a local reply (no route) carries the reason code and request id', async (t) => {
  const u = await startUsher({ listeners: [{ address: '127.0.0.1:0', http2: {} }], routes: [{ match: { path: '/only' }, respond: { body: 'x' } }] });
  t.after(() => u.close());
  const session = await h2session(u.url);
  t.after(() => session.close());
  const r = await h2request(session, { ':path': '/nope', ':authority': 'x.test', accept: 'application/json' });
  assert.equal(r.status, 404);
  const body = JSON.parse(r.body.toString()) as { reason: string; request_id: string };
  assert.equal(body.reason, 'no_route');
  assert.equal(body.request_id, r.headers['x-request-id']);
  const ok = await h2request(session, { ':path': '/only', ':authority': 'x.test' });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'x');
});

test('h2: a body longer than its Content-Length is refused and never completes upstream', async (t) => {
  const { up, u } = await proxyTo(t, 'a', echo, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const session = await h2session(u.url);
  t.after(() => session.destroy());
  const stream = session.request({ ':method': 'POST', ':path': '/cl', 'content-length': '4' }, { endStream: false });
  stream.on('error', () => {});
  stream.resume();
  stream.end(Buffer.from('0123456789'));
  let status = 0;
  stream.on('response', (h) => (status = Number(h[':status'])));
  await new Promise<void>((resolve) => stream.on('close', () => resolve()));
  // RFC 9113 §8.1.1: DATA that disagrees with Content-Length makes the request malformed: a
  // stream error. The code is node's HTTP/2 layer's, not usher's: PROTOCOL_ERROR on Node 20;
  // Node 22+ says INTERNAL_ERROR and also ends the session (GOAWAY).
  assert.ok([constants.NGHTTP2_PROTOCOL_ERROR, constants.NGHTTP2_INTERNAL_ERROR].includes(stream.rstCode!), `reset with an error, got ${stream.rstCode}`);
  assert.equal(status, 0, 'no response to the malformed request');
  assert.equal(up.requests.filter((r) => r.url === '/cl').length <= 1, true);
  // usher keeps serving: on the same session where node kept it, else on a new one.
  const next = session.closed || session.destroyed ? await h2session(u.url) : session;
  if (next !== session) t.after(() => next.destroy());
  const r = await h2request(next, { ':path': '/after' });
  assert.equal(r.status, 200);
});

test('h2: a call the client cancels (RST_STREAM CANCEL) aborts its upstream request and is logged downstream_aborted', async (t) => {
  let upstreamClosed = 0;
  const held: ServerResponse[] = [];
  t.after(() => held.forEach((r) => r.destroy()));
  const { up, u } = await proxyTo(
    t,
    'a',
    (req, res) => {
      // A long call (a gRPC stream, a slow report): the upstream answers headers, then works on.
      res.on('close', () => upstreamClosed++);
      res.writeHead(200);
      res.write('partial');
      held.push(res);
    },
    { listeners: [{ address: '127.0.0.1:0', http2: {} }] },
  );
  const session = await h2session(u.url);
  t.after(() => session.close());
  for (const path of ['/before-headers', '/after-headers']) {
    const stream = session.request({ ':path': path });
    stream.on('error', () => {});
    if (path === '/after-headers') await new Promise((resolve) => stream.once('data', resolve));
    else await waitFor(() => up.requests.some((r) => r.url === path), 5000, 'the request upstream');
    stream.close(constants.NGHTTP2_CANCEL);
  }
  await waitFor(() => upstreamClosed === 2, 5000, 'both upstream requests aborted');
  await waitFor(() => u.access.length === 2, 5000, 'access log');
  assert.deepEqual(
    u.access.map((l) => l.reason),
    ['downstream_aborted', 'downstream_aborted'],
  );
  assert.equal(u.usher.inflight, 0);
});

test('h2: max_concurrent_streams is advertised and enforced', async (t) => {
  let open = 0;
  let peak = 0;
  const held: (() => void)[] = [];
  const up = await startUpstream('slow', (req, res) => {
    open++;
    peak = Math.max(peak, open);
    req.resume();
    held.push(() => {
      open--;
      res.end('ok');
    });
  });
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: { max_concurrent_streams: 3 } }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const session = await h2session(u.url);
  t.after(() => session.close());
  await waitFor(() => session.remoteSettings.maxConcurrentStreams === 3, 2000, 'remote settings');
  const all = Array.from({ length: 6 }, (_, i) => h2request(session, { ':path': `/s${i}` }));
  await waitFor(() => held.length === 3, 5000, 'three streams upstream');
  // Release the held responses one by one; the queued streams follow, never more than 3 at once.
  while (held.length > 0 || up.requests.length < 6) {
    await waitFor(() => held.length > 0, 5000, 'a held response');
    held.shift()!();
  }
  const replies = await Promise.all(all);
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(peak, 3);
});

test('h2c upstream: HTTP/2 end to end; a gRPC request carries te: trailers upstream and its trailers come back', async (t) => {
  const seen: Record<string, unknown>[] = [];
  const up = createH2cServer((req, res) => {
    seen.push({ ...req.headers });
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', req.headers['content-type'] ?? 'text/plain');
      res.addTrailers({ 'grpc-status': '0', 'x-t': 'yes' });
      res.end(`v${req.httpVersion}`);
    });
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const port = (up.address() as AddressInfo).port;
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { h2: { protocol: 'h2c', servers: [`http://127.0.0.1:${port}`] } },
    routes: [{ upstream: 'h2' }],
  });
  t.after(async () => {
    await u.close();
    await new Promise<void>((resolve) => up.close(() => resolve()));
  });
  const session = await h2session(u.url);
  t.after(() => session.close());
  const r = await h2request(session, { ':path': '/svc/M', ':authority': 'g.test', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'v2.0', 'the upstream was spoken to in HTTP/2');
  assert.equal(r.trailers?.['grpc-status'], '0');
  assert.equal(r.trailers?.['x-t'], 'yes');
  assert.equal(seen[0]![':authority'], 'g.test');
  assert.equal(seen[0]!.te, 'trailers');
  assert.equal(seen[0]!.via, '2 usher');
  assert.equal(r.headers.via, '2 usher', 'received from an h2c upstream');
  const plain = await h2request(session, { ':path': '/plain', ':authority': 'g.test' });
  assert.equal(plain.body.toString(), 'v2.0');
  assert.equal(seen[1]!.te, undefined, 'no te for a non-gRPC request');
});

test('reload: a changed listeners[].http2 is reported as needing a restart, and HTTP/2 keeps serving', async (t) => {
  // A fixed address (port 0 would open a new listener on every reload), so the listener is kept.
  const port = await closedPort();
  const { u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: `127.0.0.1:${port}`, http2: {} }] });
  const bound = config({
    listeners: [{ address: `127.0.0.1:${port}`, http2: { max_concurrent_streams: 7 } }],
    upstreams: { app: { servers: [u.config.upstreams.app!.servers[0]!.url] } },
    routes: [{ upstream: 'app' }],
    log: { level: 'warn' },
  });
  await u.usher.reload(bound);
  await waitFor(() => u.logs.some((l) => String(l.msg).includes('listeners[].http2 changed')), 2000, 'the warning');
  const session = await h2session(u.url);
  t.after(() => session.close());
  assert.equal((await h2request(session, { ':path': '/' })).status, 200);
});

test('HTTP/1.1 on an h2c listener keeps its limits: slow head 408, big head 431, pipelining; a silent connection is closed', async (t) => {
  const u = await startUsher({ listeners: [{ address: '127.0.0.1:0', http2: {} }], routes: [{ respond: { body: 'x' } }], timeouts: { request_header: '300ms' }, limits: { header_size: '1kb' } });
  t.after(() => u.close());
  assert.match(await rawRequest(u.port, 'GET / HTTP/1.1\r\nHost: x\r\n', 3000), /^HTTP\/1\.1 408 [^]*reason: request_header_timeout/);
  assert.equal(rawStatus(await rawRequest(u.port, `GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(2000)}\r\n\r\n`)), 431);
  const two = await rawRequest(u.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(two.match(/HTTP\/1\.1 200 OK/g)?.length, 2);
  // Nothing sent at all: closed once timeouts.request_header passes, before the protocol is known.
  assert.equal(await rawRequest(u.port, '', 3000), '');
});

test('shutdown: an HTTP/2 client that never closes its side of the connection is cut when the grace period ends; close() returns', async (t) => {
  const held: ServerResponse[] = [];
  const up = await startUpstream('a', (req, res) => {
    req.resume();
    held.push(res);
  });
  const u = await startUsher({ listeners: [{ address: '127.0.0.1:0', http2: {} }], upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  // allowHalfOpen: usher's FIN alone does not end this client's side, as with a client that
  // ignores GOAWAY, or node 24's own client while a stream it has not read to the end is open.
  const socket = netConnect({ host: '127.0.0.1', port: u.port, allowHalfOpen: true });
  socket.on('error', () => {});
  socket.resume();
  let cut = false;
  socket.on('end', () => (cut = true));
  socket.on('close', () => (cut = true));
  t.after(async () => {
    socket.destroy();
    held.forEach((r) => r.destroy());
    await up.close();
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('/held'))]));
  await waitFor(() => held.length === 1, 5000, 'the request reached the upstream');
  // Before the fix this never returned: node's session.destroy() after a graceful close() only
  // ends the socket and waits for the peer's FIN, so the listener's close() never completed.
  await u.close(100);
  await waitFor(() => cut, 5000, 'usher closed the connection');
});
