import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { request } from '../helpers/client.js';
import { startUsher } from '../helpers/usher.js';

/**
 * An upstream that sends `interim` (one or more 1xx responses nobody asked for: no Expect in the
 * request) right after each request head, then reads the Content-Length body and answers 200
 * with what it read. Keeps its connections alive, so a second request shows whether usher kept
 * the connection too. RFC 9110 §15.2: a client must be able to parse 1xx it did not expect.
 */
async function interimUpstream(t: TestContext, interim: string): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let need = -1;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
          need = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          socket.write(interim);
        }
        if (buf.length < need) return;
        const body = buf.subarray(0, need).toString('latin1');
        buf = buf.subarray(need);
        need = -1;
        const reply = `read ${body.length}: ${body}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${reply.length}\r\n\r\n${reply}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

for (const [name, interim] of [
  ['one unsolicited 100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n'],
  ['two 100 Continue and a 102', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\nX-Note: again\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n'],
] as const) {
  test(`${name} before the final response: GET and POST get the final response, the connection is reused`, async (t) => {
    const up = await interimUpstream(t, interim);
    const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
    t.after(() => u.close());
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());

    const get = await request(`${u.url}/`, { agent });
    assert.equal(get.status, 200, `GET: ${get.body}`);
    assert.equal(get.body, 'read 0: ');

    const post = await request(`${u.url}/upload`, { method: 'POST', body: 'hello upstream', agent });
    assert.equal(post.status, 200, `POST: ${post.body}`);
    assert.equal(post.body, 'read 14: hello upstream');

    // The interim responses were parsed as such, not taken for a broken connection.
    assert.equal(up.connections(), 1, 'the upstream connection stays in the pool');
  });
}
