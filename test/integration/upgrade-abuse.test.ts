// Upgrade (WebSocket) abuse over real sockets: what a client or an upstream could smuggle through
// the point where an HTTP/1.1 connection turns into a byte tunnel.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startRawUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** Writes `data`, reads until usher closes the connection. */
function exchange(port: number, data: string): Promise<{ reply: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ reply, socket }));
    socket.on('end', () => socket.end());
    socket.write(data);
  });
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, onConnection: Parameters<typeof startRawUpstream>[0]) {
  const up = await startRawUpstream(onConnection);
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

test('an upstream that answers 101 to a request that asked for no upgrade: 502, its bytes never reach the client, the next request is HTTP', async (t) => {
  const heads: string[] = [];
  const { u } = await setup(t, (socket, head) => {
    heads.push(head);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nSMUGGLED RESPONSE BYTES');
  });
  const { reply } = await exchange(u.port, 'GET /a HTTP/1.1\r\nHost: x.test\r\n\r\nGET /b HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n');
  const statuses = [...reply.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [502, 502], 'two HTTP answers, no tunnel');
  assert.match(reply, /reason: upstream_bad_response/);
  assert.doesNotMatch(reply, /SMUGGLED/);
  assert.deepEqual(heads.map((h) => h.split(' ')[1]), ['/a', '/b']);
});

test('an upgrade request with a body is refused (400 upgrade_not_allowed) and reaches no upstream', async (t) => {
  let connections = 0;
  const { u } = await setup(t, () => connections++);
  for (const framing of ['Content-Length: 5\r\n\r\nhello', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n']) {
    const { reply } = await exchange(u.port, `${UPGRADE}${framing}`);
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /reason: upgrade_not_allowed/);
  }
  assert.equal(connections, 0);
  await waitFor(() => u.usher.inflight === 0, 5000, 'inflight back to 0');
});

test('bytes pipelined after a refused upgrade never reach the upstream; after an accepted one they are the tunnel\'s', async (t) => {
  const seen: { head: string; rest: string[] }[] = [];
  const { u } = await setup(t, (socket, head) => {
    const entry = { head, rest: [] as string[] };
    seen.push(entry);
    socket.on('data', (c: Buffer) => entry.rest.push(c.toString('latin1')));
    if (head.includes('/refused')) socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    else socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
  });
  // A smuggled request behind a refused upgrade: usher relays the 403 and closes.
  const refused = await exchange(u.port, `${UPGRADE.replace('/ws', '/refused')}\r\nGET /admin HTTP/1.1\r\nHost: x.test\r\n\r\n`);
  assert.match(refused.reply, /^HTTP\/1\.1 403 /);
  assert.equal(seen.length, 1);
  assert.doesNotMatch(seen[0]!.head + seen[0]!.rest.join(''), /\/admin/);

  // Accepted: the same bytes are tunnel data, delivered once the upstream's 101 arrived.
  const socket = connect(u.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let reply = '';
  socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
  socket.write(`${UPGRADE}\r\nEARLY-TUNNEL-BYTES`);
  await waitFor(() => reply.includes('\r\n\r\n'), 5000, 'the 101');
  assert.match(reply, /^HTTP\/1\.1 101 /);
  await waitFor(() => seen[1]?.rest.join('') === 'EARLY-TUNNEL-BYTES', 5000, 'the early bytes through the tunnel');
  assert.equal(seen.length, 2, 'no second request was parsed out of them');
});

test('a refused upgrade whose client never closes its side does not hold the connection or shutdown', async (t) => {
  const up = await startRawUpstream((socket) => socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(() => up.close());
  const sockets: { socket: Socket; reply: () => string; ended: () => boolean }[] = [];
  // Refused by usher (a body) and by the upstream (403), each with bytes pipelined behind it.
  for (const data of [`${UPGRADE}Content-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n`, `${UPGRADE}\r\nGET / HTTP/1.1\r\n`]) {
    const socket = connect({ port: u.port, host: '127.0.0.1', allowHalfOpen: true });
    let reply = '';
    let ended = false;
    socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    socket.on('end', () => (ended = true));
    socket.on('error', () => {});
    // allowHalfOpen: this client never sends its FIN, even after usher's.
    socket.write(data);
    sockets.push({ socket, reply: () => reply, ended: () => ended });
  }
  t.after(() => sockets.forEach((s) => s.socket.destroy()));
  await waitFor(() => sockets.every((s) => /\r\n\r\n/.test(s.reply())), 5000, 'both replies');
  assert.match(sockets[0]!.reply(), /^HTTP\/1\.1 400 /);
  assert.match(sockets[1]!.reply(), /^HTTP\/1\.1 403 /);
  // Before the fix usher.close() never returned: node:http's server.close() waited for these sockets.
  await u.close(100);
  await waitFor(() => sockets.every((s) => s.ended()), 5000, 'usher to close its side of both connections');
});
