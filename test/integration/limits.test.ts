// Request limits (414/431/413), downstream timeouts (408, keep-alive) and the shape of local
// replies, over real sockets. Malformed and smuggling requests are in malformed.test.ts.

import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { assertLocalReply, RawConnection, responseCount, within } from '../helpers/raw.js';
import { closedPort, type TestUpstream } from '../helpers/upstream.js';
import { proxyTo, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

function setup(t: TestContext, settings: Record<string, unknown>, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ up: TestUpstream; u: TestUsher }> {
  return proxyTo(t, 'a', handler, settings);
}

/** What an upstream saw of one request body. */
interface Upload {
  bytes: number;
  complete: boolean;
  /** The request went away before its body was complete (usher aborted it). */
  aborted: boolean;
}

/** An upstream handler that records each upload; it answers after the body, or at once when `early`. */
function recordUploads(uploads: Upload[], early = false): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const upload: Upload = { bytes: 0, complete: false, aborted: false };
    uploads.push(upload);
    if (early) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started');
    }
    req.on('data', (c: Buffer) => (upload.bytes += c.length));
    req.on('end', () => {
      upload.complete = true;
      res.end('ok');
    });
    req.on('close', () => (upload.aborted = !upload.complete));
  };
}

// ---- limits ------------------------------------------------------------------------------------

test('request line: exactly limits.request_line is served, one byte more is 414 request_line_too_long', async (t) => {
  const { up, u } = await setup(t, { limits: { request_line: 512, header_size: 1024 } });
  // "GET " + target + " HTTP/1.1" is 13 bytes plus the target.
  const atLimit = `/${'a'.repeat(512 - 13 - 1)}`;
  const ok = await rawRequest(u.port, `GET ${atLimit} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(rawStatus(ok), 200);
  assert.deepEqual(up.requests.map((r) => r.url), [atLimit]);

  const reply = await rawRequest(u.port, `GET ${atLimit}b HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertLocalReply(reply, 414, 'request_line_too_long');
  assert.equal(up.requests.length, 1, 'the upstream saw nothing of the long request');
});

test('a request target larger than header_size overflows the parser and is still 414 request_line_too_long', async (t) => {
  const { up, u } = await setup(t, { limits: { request_line: 512, header_size: 1024 } });
  const reply = await rawRequest(u.port, `GET /${'a'.repeat(2000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertLocalReply(reply, 414, 'request_line_too_long');
  assert.equal(up.requests.length, 0);
});

test('a header section over limits.header_size is 431 headers_too_large', async (t) => {
  const { up, u } = await setup(t, { limits: { header_size: 1024 } });
  const ok = await request(`${u.url}/small`, { headers: { 'x-a': 'a'.repeat(500) } });
  assert.equal(ok.status, 200);
  // 2000 bytes: far under the default (16kb), so this fails if the configured limit is not applied.
  const reply = await rawRequest(u.port, `GET /big HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(2000)}\r\n\r\n`);
  assertLocalReply(reply, 431, 'headers_too_large');
  assert.deepEqual(up.requests.map((r) => r.url), ['/small']);
});

test('a head that overflows in a later read than its request line is 431, not 414', async (t) => {
  // header_size is larger than one socket read (64 KiB), so the overflow is detected in a chunk
  // that does not contain the request line: the listener must not mistake it for the first line.
  const { up, u } = await setup(t, { limits: { header_size: '80kb' } });
  const reply = await rawRequest(u.port, `GET / HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(80 * 1024)}`);
  assertLocalReply(reply, 431, 'headers_too_large');
  assert.equal(up.requests.length, 0);
});

test('more than limits.header_count fields is 431 too_many_headers; exactly the limit is served', async (t) => {
  const { up, u } = await setup(t, { limits: { header_count: 10 } });
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
  // Host + 9 = 10 fields.
  const ok = await rawRequest(u.port, `GET /ten HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields(8)}\r\n`);
  assert.equal(rawStatus(ok), 200);
  const reply = await rawRequest(u.port, `GET /eleven HTTP/1.1\r\nHost: x\r\n${fields(10)}\r\n`);
  assertLocalReply(reply, 431, 'too_many_headers');
  assert.deepEqual(up.requests.map((r) => r.url), ['/ten']);
});

test('a Content-Length over limits.body is 413 body_too_large and the upstream sees nothing', async (t) => {
  const uploads: Upload[] = [];
  const { up, u } = await setup(t, { limits: { body: 50 } }, recordUploads(uploads));
  const ok = await request(`${u.url}/at-limit`, { method: 'POST', body: 'x'.repeat(50) });
  assert.equal(ok.status, 200);
  assert.equal(uploads[0]!.bytes, 50);

  const reply = await rawRequest(u.port, `POST /over HTTP/1.1\r\nHost: x\r\nContent-Length: 51\r\n\r\n${'x'.repeat(51)}`);
  assertLocalReply(reply, 413, 'body_too_large');
  assert.deepEqual(up.requests.map((r) => r.url), ['/at-limit']);
});

test('with limits.body set, a chunked body under the limit reaches the upstream intact', async (t) => {
  const { up, u } = await setup(t, { limits: { body: 1000 } }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`got ${Buffer.concat(chunks).toString()}`));
  });
  // Head and body in one packet: the body is parsed in the same tick as the head.
  const reply = await rawRequest(u.port, 'POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  assert.equal(rawStatus(reply), 200);
  assert.ok(reply.endsWith('\r\n\r\ngot hello world'), `the upstream got the whole body: ${JSON.stringify(reply)}`);
  assert.equal(up.requests.length, 1);
});

test('a chunked body that grows past limits.body is 413 and the upstream request is aborted', async (t) => {
  const uploads: Upload[] = [];
  const { up, u } = await setup(t, { limits: { body: 50 } }, recordUploads(uploads));
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write(`POST /grow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
  await waitFor(() => uploads[0]?.bytes === 5, 5000, 'the first chunk (under the limit) to reach the upstream');
  c.write(`40\r\n${'x'.repeat(64)}\r\n`);
  await within(c.closed, 5000, 'the connection to close');
  assertLocalReply(c.received, 413, 'body_too_large');
  await waitFor(() => uploads[0]!.aborted, 5000, 'the upstream request to be aborted');
  assert.equal(uploads[0]!.complete, false);
  assert.equal(up.requests.length, 1);
});

test('a chunked body past limits.body after the response started: the downstream is reset, no 413 spliced in', async (t) => {
  const uploads: Upload[] = [];
  const { u } = await setup(t, { limits: { body: 50 } }, recordUploads(uploads, true));
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write(`POST /grow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
  await waitFor(() => c.received.includes('started'), 5000, 'the response to start');
  c.write(`40\r\n${'x'.repeat(64)}\r\n`);
  await within(c.closed, 5000, 'the connection to close');
  assert.equal(rawStatus(c.received), 200);
  assert.equal(responseCount(c.received), 1, 'no second response after the first one started');
  assert.ok(!c.received.endsWith('0\r\n\r\n'), 'the truncated response is not ended as complete');
  await waitFor(() => uploads[0]!.aborted, 5000, 'the upstream request to be aborted');
  await waitFor(() => u.access.length > 0);
  assert.equal(u.access[0]!.reason, 'body_too_large');
});

// ---- timeouts ----------------------------------------------------------------------------------

test('slowloris: a partial request head that stalls gets 408 request_header_timeout', async (t) => {
  const { up, u } = await setup(t, { timeouts: { request_header: '300ms' } });
  // The default is 10s: the bound fails the test if the configured timeout is not applied.
  const reply = await within(rawRequest(u.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n'), 5000, 'a 408');
  assertLocalReply(reply, 408, 'request_header_timeout');
  assert.equal(up.requests.length, 0);
});

test('slowloris: a head that keeps trickling in is cut off too (the timeout is for the whole head)', async (t) => {
  const { up, u } = await setup(t, { timeouts: { request_header: '300ms' } });
  const c = new RawConnection(u.port);
  c.write('GET / HTTP/1.1\r\nHost: x\r\n');
  // One header line every 50ms: never idle for long, never finished.
  let n = 0;
  const trickle = setInterval(() => {
    if (!c.ended) c.write(`X-T${n++}: 1\r\n`);
  }, 50);
  t.after(() => {
    clearInterval(trickle);
    c.destroy();
  });
  await within(c.closed, 5000, 'the connection to close');
  clearInterval(trickle);
  assertLocalReply(c.received, 408, 'request_header_timeout');
  assert.equal(up.requests.length, 0);
});

test('a request body that stalls gets 408 request_body_timeout and the upstream request is aborted', async (t) => {
  const uploads: Upload[] = [];
  const { up, u } = await setup(t, { timeouts: { body_idle: '300ms' } }, recordUploads(uploads));
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write(`POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'x'.repeat(30)}`);
  // The default is 30s.
  await within(c.closed, 5000, 'a 408');
  assertLocalReply(c.received, 408, 'request_body_timeout');
  assert.equal(up.requests.length, 1);
  await waitFor(() => uploads[0]!.aborted, 5000, 'the upstream request to be aborted');
});

test('an idle keep-alive connection is closed after timeouts.keep_alive', async (t) => {
  const { u } = await setup(t, { timeouts: { keep_alive: '1s' } }, (req, res) => {
    req.resume();
    res.end('ok');
  });
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => c.received.includes('\r\n\r\nok'), 5000, 'the response');
  const head = c.received.slice(0, c.received.indexOf('\r\n\r\n'));
  assert.equal(rawStatus(head), 200);
  assert.doesNotMatch(head, /^connection: *close/im, 'the connection is kept alive after the response');
  // No Keep-Alive field (RFC 9112 Appendix C.2.2): the timeout is applied, not announced.
  assert.doesNotMatch(head, /^keep-alive:/im, 'no Keep-Alive field');
  // The default is 5s: the bound fails the test if 1s is not applied.
  await within(c.closed, 4500, 'the idle connection to be closed');
  assert.equal(c.error, undefined, 'closed cleanly, not reset');
  assert.equal(responseCount(c.received), 1, 'nothing is written on an idle close');
});

// ---- local replies -----------------------------------------------------------------------------

test('a 502 local reply is JSON when the client accepts JSON, text otherwise, with x-request-id = request_id', async (t) => {
  const dead = await closedPort();
  const u = await startUsher({ upstreams: { app: { servers: [`http://127.0.0.1:${dead}`] } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());

  const json = await request(`${u.url}/`, { headers: { accept: 'application/json' } });
  assert.equal(json.status, 502);
  assert.match(String(json.headers['content-type']), /^application\/json/);
  const body = JSON.parse(json.body) as Record<string, unknown>;
  assert.equal(body.status, 502);
  assert.equal(body.reason, 'upstream_connect_refused');
  assert.equal(typeof body.request_id, 'string');
  assert.equal(body.request_id, json.headers['x-request-id']);

  for (const accept of [undefined, 'text/html', '*/*']) {
    const text = await request(`${u.url}/`, { headers: accept === undefined ? {} : { accept } });
    assert.equal(text.status, 502, `accept ${accept}`);
    assert.match(String(text.headers['content-type']), /^text\/plain/, `accept ${accept}`);
    assert.match(text.body, /^502 Bad Gateway\nreason: upstream_connect_refused\nrequest_id: \S+\n$/, `accept ${accept}`);
    assert.equal(/request_id: (\S+)/.exec(text.body)?.[1], text.headers['x-request-id'], `accept ${accept}`);
  }
  await waitFor(() => u.access.length === 4, 5000, 'four access-log lines');
  const ids = u.access.map((l) => l.request_id);
  assert.equal(new Set(ids).size, 4, 'each local reply has its own request id');
  assert.equal(ids[0], body.request_id, 'the access log carries the same id');
});
