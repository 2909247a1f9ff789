import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { rawStatus } from '../helpers/client.js';
import { within } from '../helpers/raw.js';
import { startUsher, waitFor } from '../helpers/usher.js';

const TOTAL = 8 * 1024 * 1024;

/**
 * A client that sends the head of an 8 MB upload and then the body as fast as the connection
 * takes it, whatever comes back (as curl does without Expect), until the connection closes.
 * Resolves with everything it received and whether usher closed the connection gracefully.
 */
function upload(port: number): Promise<{ received: string; sent: number; error: string | undefined }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let received = '';
    let sent = 0;
    let error: string | undefined;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    s.on('data', (d: Buffer) => (received += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    s.on('close', () => resolve({ received, sent, error }));
    s.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    const pump = (): void => {
      while (sent < TOTAL && !s.destroyed && s.writable) {
        sent += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

async function usherFor(t: TestContext, origin: string) {
  const u = await startUsher({ upstreams: { app: { servers: [origin] } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  return u;
}

function check(r: { received: string; sent: number; error: string | undefined }, status: number, body: string): void {
  // The reply must arrive whole: an ECONNRESET before it (a reset that discards it) fails here.
  assert.equal(rawStatus(r.received), status, `client got: ${JSON.stringify(r.received.slice(0, 200))} (error ${r.error})`);
  // Content-Length or chunked (node:http's 413 is chunked): the last bytes are the body's end.
  assert.ok(r.received.endsWith(`\r\n\r\n${body}`) || r.received.endsWith(`${body}\r\n0\r\n\r\n`), `the whole reply: ${JSON.stringify(r.received)}`);
  // The upload was not read to its end: the connection cannot be reused, and usher says so.
  assert.match(r.received, /\r\nconnection: close\r\n/i);
  assert.doesNotMatch(r.received, /keep-alive/i);
}

test('an upstream that answers 413 right after the head and closes (node:http): the client gets the 413, then usher closes', async (t) => {
  let heads = 0;
  // node:http answers without reading the body, then closes: unread bytes make its kernel reset the connection.
  const up = createServer((_req, res) => {
    heads++;
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
    res.end('too large');
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => up.close(() => resolve())));
  const u = await usherFor(t, `http://127.0.0.1:${(up.address() as AddressInfo).port}`);
  const r = await within(upload(u.port), 20_000, 'the upload connection to close');
  check(r, 413, 'too large');
  assert.equal(heads, 1);
  await waitFor(() => u.access.length === 1, 5000, 'the access-log line');
  assert.equal(u.access[0]!.status, 413);
});

test('an upstream that answers 401 early and drains the rest: the client gets the 401, then usher closes', async (t) => {
  const sockets = new Set<Socket>();
  const up = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="x"\r\nContent-Length: 12\r\n\r\nunauthorized');
      // It reads and drops the rest, as nginx's lingering close does; the connection stays open.
      socket.resume();
    });
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        up.close(() => resolve());
      }),
  );
  const u = await usherFor(t, `http://127.0.0.1:${(up.address() as AddressInfo).port}`);
  const r = await within(upload(u.port), 20_000, 'the upload connection to close');
  check(r, 401, 'unauthorized');
});
