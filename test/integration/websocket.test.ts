import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { randomBytes } from 'node:crypto';
import { rawRequest, rawStatus } from '../helpers/client.js';
import { CERT_FILE, h2session, KEY_FILE } from '../helpers/h2.js';
import { closedPort } from '../helpers/upstream.js';
import { closePayload, decodeFrames, encodeFrame, OP } from '../helpers/ws-frames.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

interface WsUpstream {
  url: string;
  server: Server;
  wss: WebSocketServer;
  heads: IncomingMessage[];
  closes: { code: number; reason: string }[];
  close(): Promise<void>;
}

/** A real WebSocket echo server (ws) on 127.0.0.1:0; `verify` may refuse the handshake. */
async function startWsUpstream(name: string, verify?: (cb: (ok: boolean, code?: number, message?: string) => void) => void): Promise<WsUpstream> {
  const server = createServer((_req, res) => res.end(name));
  const heads: IncomingMessage[] = [];
  const closes: { code: number; reason: string }[] = [];
  const wss = new WebSocketServer({ server, maxPayload: 8 * 1024 * 1024, ...(verify ? { verifyClient: (_info: unknown, cb: (ok: boolean, code?: number, message?: string) => void) => verify(cb) } : {}) });
  wss.on('connection', (ws, req) => {
    heads.push(req);
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : (data as Buffer).toString();
      if (text.startsWith('close:')) ws.close(Number(text.slice(6)), 'server says bye');
      else if (text === 'who') ws.send(name);
      else ws.send(data as Buffer, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    wss,
    heads,
    closes,
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

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 8 * 1024 * 1024, rejectUnauthorized: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function next(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, settings: Record<string, unknown> = {}, verify?: Parameters<typeof startWsUpstream>[1]): Promise<{ a: WsUpstream; b: WsUpstream; u: TestUsher; ws: string }> {
  const a = await startWsUpstream('a', verify);
  const b = await startWsUpstream('b', verify);
  const u = await startUsher({ upstreams: { app: { servers: [a.url, b.url] } }, routes: [{ match: { path: '/ws' }, upstream: 'app' }], ...settings });
  t.after(async () => {
    await u.close(200);
    await a.close();
    await b.close();
  });
  return { a, b, u, ws: `ws://127.0.0.1:${u.port}/ws` };
}

test('WebSocket: routed and balanced, forwarding headers, 1 MiB binary, text, fragments, ping/pong', async (t) => {
  const { a, b, u, ws: url } = await setup(t);
  const c1 = await open(url);
  const c2 = await open(`${url}/two`);
  c1.send('who');
  c2.send('who');
  const names = [(await next(c1)).data.toString(), (await next(c2)).data.toString()].sort();
  assert.deepEqual(names, ['a', 'b'], 'two tunnels went to the two servers');
  const head = [...a.heads, ...b.heads][0]!;
  assert.equal(head.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(head.headers.via, '1.1 usher');
  assert.ok(head.headers['x-request-id']);

  // 1 MiB of random binary comes back byte for byte.
  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  c1.send(big, { binary: true });
  const echoed = await next(c1);
  assert.equal(echoed.isBinary, true);
  assert.ok(echoed.data.equals(big), '1 MiB binary intact');

  // A message in three fragments (RFC 6455 §5.4) is one message at the other end.
  c1.send('frag-', { fin: false });
  c1.send('men-', { fin: false });
  c1.send('ted', { fin: true });
  assert.equal((await next(c1)).data.toString(), 'frag-men-ted');

  const pong = new Promise<Buffer>((resolve) => c1.once('pong', (d) => resolve(d)));
  c1.ping('are you there');
  assert.equal((await pong).toString(), 'are you there');

  assert.equal(u.usher.inflight, 2, 'open tunnels count as in flight');
  c1.close();
  c2.close();
  await waitFor(() => u.usher.inflight === 0, 5000, 'tunnels closed');
  const lines = u.access.filter((l) => l.status === 101);
  assert.equal(lines.length, 2, 'one access-log line per tunnel, status 101');
  assert.ok((lines[0]!.bytes_in as number) > 1024 * 1024);
});

test('WebSocket close codes pass both ways', async (t) => {
  const { a, b, ws: url } = await setup(t);
  const c = await open(url);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => c.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  c.send('close:4002');
  assert.deepEqual(await closed, { code: 4002, reason: 'server says bye' });

  const d = await open(url);
  d.close(4001, 'client says bye');
  await waitFor(() => [...a.closes, ...b.closes].some((x) => x.code === 4001), 5000, 'upstream saw the close');
  assert.deepEqual([...a.closes, ...b.closes].find((x) => x.code === 4001), { code: 4001, reason: 'client says bye' });
});

test('a refused upgrade (the upstream answers 403) is relayed as refused', async (t) => {
  const { u, ws: url } = await setup(t, {}, (cb) => cb(false, 403, 'Forbidden'));
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    ws.on('open', () => reject(new Error('the upgrade should have been refused')));
    ws.on('error', () => {});
  });
  assert.equal(status, 403);
  await waitFor(() => u.access.some((l) => l.status === 403), 5000, 'access log');
  assert.equal(u.usher.inflight, 0);
});

test('h2c (and other unlisted) upgrades are refused with 400 upgrade_not_allowed and reach no upstream', async (t) => {
  const { a, b, u } = await setup(t);
  const reply = await rawRequest(
    u.port,
    'GET /ws HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
  );
  assert.equal(rawStatus(reply), 400);
  assert.match(reply, /reason: upgrade_not_allowed/);
  const other = await rawRequest(u.port, 'GET /ws HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: IRC/6.9\r\n\r\n');
  assert.equal(rawStatus(other), 400);
  assert.equal(a.heads.length + b.heads.length, 0);
  await waitFor(() => u.usher.inflight === 0, 5000, 'inflight back to 0');
});

test('an idle tunnel is closed after upgrade.idle_timeout; shutdown closes open tunnels', async (t) => {
  const { u, ws: url } = await setup(t, { upgrade: { idle_timeout: '150ms' } });
  const c = await open(url);
  const code = await new Promise<number>((resolve) => c.once('close', (cd) => resolve(cd)));
  assert.equal(code, 1006, 'cut without a close frame');
  await waitFor(() => u.access.some((l) => l.reason === 'tunnel_idle_timeout'), 5000, 'access log reason');

  // Graceful shutdown waits for tunnels (they are in flight) up to the grace period, then cuts them.
  const u2 = await startUsher({ upstreams: { app: { servers: u.config.upstreams.app!.servers.map((s) => s.url) } }, routes: [{ upstream: 'app' }] });
  const d = await open(`ws://127.0.0.1:${u2.port}/x`);
  const dClosed = new Promise<void>((resolve) => d.once('close', () => resolve()));
  await u2.close(100);
  await dClosed;
});

test('WebSocket over HTTP/2 (RFC 8441 extended CONNECT) to an HTTP/1.1 WebSocket upstream', async (t) => {
  const { a, b, u } = await setup(t, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const session = await h2session(u.url);
  t.after(() => session.destroy());
  await waitFor(() => session.remoteSettings.enableConnectProtocol === true, 2000, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const stream = session.request(
    { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/ws', ':authority': 'chat.test', 'sec-websocket-version': '13' },
    { endStream: false },
  );
  const status = await new Promise<number>((resolve, reject) => {
    stream.once('response', (h) => resolve(Number(h[':status'])));
    stream.once('error', reject);
  });
  assert.equal(status, 200, 'RFC 8441 §5: 200, not 101');
  let buf: Buffer = Buffer.alloc(0);
  const frames: { opcode: number; payload: Buffer }[] = [];
  stream.on('data', (c: Buffer) => {
    const d = decodeFrames(Buffer.concat([buf, c]));
    buf = d.rest;
    frames.push(...d.frames);
  });
  const big = randomBytes(200 * 1024);
  stream.write(encodeFrame(OP.TEXT, Buffer.from('who')));
  stream.write(encodeFrame(OP.BINARY, big));
  stream.write(encodeFrame(OP.PING, Buffer.from('p')));
  await waitFor(() => frames.length >= 3, 5000, 'three frames back');
  assert.equal(frames[0]!.opcode, OP.TEXT);
  assert.match(frames[0]!.payload.toString(), /^[ab]$/, 'answered by one of the two servers');
  assert.ok(frames.some((f) => f.opcode === OP.BINARY && f.payload.equals(big)), '200 KiB binary intact');
  assert.ok(frames.some((f) => f.opcode === OP.PONG && f.payload.toString() === 'p'), 'ping answered with pong');
  const head = [...a.heads, ...b.heads][0]!;
  assert.equal(head.headers.host, 'chat.test');
  assert.equal(head.headers['x-forwarded-for'], '127.0.0.1');
  stream.write(encodeFrame(OP.CLOSE, closePayload(4003, 'h2 bye')));
  await waitFor(() => [...a.closes, ...b.closes].some((c) => c.code === 4003), 5000, 'the upstream saw the close code');
  await waitFor(() => frames.some((f) => f.opcode === OP.CLOSE), 5000, 'the close echoed');
  assert.equal(frames.find((f) => f.opcode === OP.CLOSE)!.payload.readUInt16BE(0), 4003);
  // RFC 8441 §6: END_STREAM is the TCP FIN of the tunnel; the upstream's FIN came back as ours.
  stream.end();
  await waitFor(() => u.usher.inflight === 0, 5000, 'the tunnel finished');
  assert.equal(u.access.at(-1)?.status, 200);
  assert.equal(u.access.at(-1)?.reason, null);

  // A plain CONNECT (forward proxying) is refused.
  const plain = session.request({ ':method': 'CONNECT', ':authority': 'elsewhere.test:443' }, { endStream: false });
  const plainStatus = await new Promise<number>((resolve) => plain.once('response', (h) => resolve(Number(h[':status']))));
  plain.close();
  assert.equal(plainStatus, 405);
});

test('WebSocket: a server that refuses the connection is skipped (retried on another); wss:// on a TLS + http2 listener', async (t) => {
  const a = await startWsUpstream('a');
  const dead = await closedPort();
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls: { cert: CERT_FILE, key: KEY_FILE }, http2: {} }],
    upstreams: { app: { servers: [`http://127.0.0.1:${dead}`, a.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close(200);
    await a.close();
  });
  for (let i = 0; i < 2; i++) {
    const c = await open(`wss://127.0.0.1:${u.port}/chat`);
    c.send('who');
    assert.equal((await next(c)).data.toString(), 'a');
    c.close();
  }
  assert.equal(a.heads[0]!.headers['x-forwarded-proto'], 'https');
  await waitFor(() => u.usher.inflight === 0, 5000, 'tunnels closed');
  assert.ok(u.access.some((l) => l.status === 101 && l.attempts === 2), 'one tunnel needed a second attempt');
});
