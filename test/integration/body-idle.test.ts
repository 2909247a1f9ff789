import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import { assertLocalReply, RawConnection, within } from '../helpers/raw.js';
import { proxyTo } from '../helpers/usher.js';

const BODY_IDLE = 250;
// Far more than the kernel and stream buffers on the way take in while the upstream waits (measured:
// about 4 MB on loopback), so that the client is really held back.
const SIZE = 64 * 1024 * 1024;

/**
 * An upstream that reads slowly: it holds the request stream paused for four times
 * timeouts.body_idle before it reads on (usher, not the client, is then the one waiting), then
 * answers with the number of bytes it got.
 */
function slowReader(req: IncomingMessage, res: ServerResponse): void {
  req.pause();
  setTimeout(() => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(String(n)));
    req.resume();
  }, BODY_IDLE * 4);
}

/** Sends SIZE bytes as fast as the connection takes them (Content-Length, or chunked). */
function eagerUpload(port: number, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = chunked ? {} : { 'content-length': String(SIZE) };
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let sent = 0;
    const pump = (): void => {
      while (sent < SIZE) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

for (const chunked of [false, true]) {
  test(`body_idle: a client held back by a slow upstream (backpressure) is not blamed with a 408 (${chunked ? 'chunked, counted' : 'Content-Length'})`, async (t) => {
    const { u } = await proxyTo(t, 'slow', slowReader, { timeouts: { body_idle: `${BODY_IDLE}ms` } });
    const r = await within(eagerUpload(u.port, chunked), 20_000, 'the upload');
    assert.equal(r.status, 200, `reply: ${r.body.slice(0, 200)}`);
    assert.equal(r.body, String(SIZE), 'the whole body reached the upstream');
    assert.equal(u.access.filter((l) => l.reason === 'request_body_timeout').length, 0);
  });
}

test('body_idle: a client that really stops sending still gets 408 request_body_timeout (upstream reading, or slow)', async (t) => {
  for (const [name, handler] of [
    ['eager upstream', (req: IncomingMessage) => req.resume()],
    ['slow upstream', slowReader],
  ] as const) {
    const { u } = await proxyTo(t, 'up', handler, { timeouts: { body_idle: `${BODY_IDLE}ms` } });
    const c = new RawConnection(u.port);
    t.after(() => c.destroy());
    c.write(`POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(300)}`);
    // The default body_idle is 30s: the bound fails the test if the configured one is not applied.
    await within(c.closed, 10_000, `${name}: a 408`);
    assertLocalReply(c.received, 408, 'request_body_timeout', name);
  }
});
