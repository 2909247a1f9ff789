import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { startUsher, waitFor } from '../helpers/usher.js';

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()));
    ws.send(text);
  });
}

test('a WebSocket tunnel leaves no pile of listeners on the client socket (no MaxListenersExceededWarning)', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(data.toString())));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const u = await startUsher({ upstreams: { ws: { servers: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] } }, routes: [{ upstream: 'ws' }] });
  t.after(async () => {
    await u.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));

  // usher's side of each tunnel: the listener's set of upgraded client sockets.
  const listeners = (u.usher as unknown as { listeners: Map<string, { tunnels: Set<Socket> }> }).listeners;
  const tunnels = [...listeners.values()][0]!.tunnels;

  const clients: WebSocket[] = [];
  for (let i = 0; i < 3; i++) {
    const ws = await open(`ws://127.0.0.1:${u.port}/chat`);
    clients.push(ws);
    assert.equal(await echo(ws, `hello ${i}`), `hello ${i}`);
  }
  assert.equal(tunnels.size, 3);
  for (const socket of tunnels) {
    // Each is expected once: the tunnel set, the response's own, the tunnel teardown, the pipe.
    assert.ok(socket.listenerCount('close') <= 5, `close listeners on a tunnel's client socket: ${socket.listenerCount('close')}`);
    assert.ok(socket.listenerCount('error') <= 5, `error listeners on a tunnel's client socket: ${socket.listenerCount('error')}`);
  }
  for (const ws of clients) ws.close(1000, 'done');
  await waitFor(() => tunnels.size === 0, 5000, 'the tunnels to close');
  // process.emitWarning emits on the next tick: one more round trip on a fresh tunnel first.
  const last = await open(`ws://127.0.0.1:${u.port}/chat`);
  assert.equal(await echo(last, 'last'), 'last');
  last.close(1000, 'done');
  await waitFor(() => tunnels.size === 0, 5000, 'the last tunnel to close');
  assert.deepEqual(
    warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
    [],
  );
});
