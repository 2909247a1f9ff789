import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test, type TestContext } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import type { startUpstream } from '../helpers/upstream.js';
import { proxyTo } from '../helpers/usher.js';

async function echoSetup(t: TestContext, handler: Parameters<typeof startUpstream>[1], extra: Record<string, unknown> = {}) {
  const { up: a, u } = await proxyTo(t, 'a', handler, extra);
  return { a, u };
}

/** Decodes a complete chunked body (RFC 9112 §7.1); throws on anything malformed or cut short. */
function dechunk(body: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', i);
    assert.ok(eol > i, `a chunk-size line at ${i}`);
    const size = Number.parseInt(body.slice(i, eol), 16);
    assert.ok(Number.isInteger(size) && size >= 0, `chunk size ${JSON.stringify(body.slice(i, eol))}`);
    i = eol + 2;
    if (size === 0) {
      assert.equal(body.slice(i), '\r\n', 'the last chunk ends the message');
      return out;
    }
    out += body.slice(i, i + size);
    assert.equal(body.slice(i + size, i + size + 2), '\r\n', 'CRLF after chunk data');
    i += size + 2;
  }
}

test('request bodies pass with Content-Length and chunked; response framing is preserved', async (t) => {
  const { u } = await echoSetup(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const te = req.headers['transfer-encoding'] ?? 'none';
      const cl = req.headers['content-length'] ?? 'none';
      if (req.url === '/chunked-response') {
        res.writeHead(200, { 'x-te': te, 'x-cl': cl });
        res.write(body.subarray(0, 3));
        res.end(body.subarray(3));
      } else {
        res.writeHead(200, { 'content-length': body.length, 'x-te': te, 'x-cl': cl });
        res.end(body);
      }
    });
  });
  const fixed = await request(`${u.url}/`, { method: 'POST', body: 'hello world' });
  assert.equal(fixed.body, 'hello world');
  assert.equal(fixed.headers['x-cl'], '11');
  assert.equal(fixed.headers['content-length'], '11');

  const chunkedReply = await rawRequest(
    u.port,
    'POST /chunked-response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  );
  assert.equal(rawStatus(chunkedReply), 200);
  assert.match(chunkedReply, /transfer-encoding: chunked/i, 'a chunked response stays chunked');
  // Chunk boundaries are hop-by-hop (RFC 9112 §7.1) and node's server may merge the upstream's
  // write and end into one chunk (Node 26 does): the decoded bytes are what usher guarantees.
  assert.equal(dechunk(chunkedReply.slice(chunkedReply.indexOf('\r\n\r\n') + 4)), 'hello world', 'the chunked body arrives whole');
  // A chunked body that had fully arrived may be re-framed with its exact Content-Length
  // (RFC 9112 §7: framing is hop-by-hop); the bytes are what counts.
  assert.match(chunkedReply, /x-te: chunked|x-cl: 11/i);
});

test('a chunked upload still in flight reaches the upstream chunked, streamed', async (t) => {
  const { a, u } = await echoSetup(t, (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`${n} ${req.headers['transfer-encoding'] ?? 'none'}`));
  });
  const reply = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(`${u.url}/`, { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.write('first part;');
    // The second chunk is sent only once the upstream has seen the request: it is streamed.
    const wait = setInterval(() => {
      if (a.requests.length > 0) {
        clearInterval(wait);
        req.end('second part');
      }
    }, 5);
  });
  assert.equal(reply, '22 chunked');
});

test('HEAD, 204 and 304 carry no body; HEAD keeps Content-Length', async (t) => {
  const { u } = await echoSetup(t, (req, res) => {
    req.resume();
    if (req.url === '/204') return void res.writeHead(204).end();
    if (req.url === '/304') return void res.writeHead(304, { etag: '"x"' }).end();
    res.writeHead(200, { 'content-length': '5' });
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const head = await rawRequest(u.port, 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const responses = head.split(/(?=HTTP\/1\.1 )/);
  assert.equal(responses.length, 3, `three responses on one connection, got: ${head}`);
  assert.match(responses[0]!, /^HTTP\/1\.1 200/);
  assert.match(responses[0]!, /content-length: 5/i);
  assert.ok(responses[0]!.endsWith('\r\n\r\n'), 'HEAD response has no body');
  assert.match(responses[1]!, /^HTTP\/1\.1 204/);
  assert.ok(responses[1]!.endsWith('\r\n\r\n'));
  assert.match(responses[2]!, /^HTTP\/1\.1 304/);
  assert.ok(responses[2]!.endsWith('\r\n\r\n'));
});

test('Expect: 100-continue: usher says 100 Continue, then forwards the body', async (t) => {
  const { a, u } = await echoSetup(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`got ${Buffer.concat(chunks).toString()}`));
  });
  const result = await new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
    let continued = false;
    const req = httpRequest(`${u.url}/`, { method: 'PUT', headers: { expect: '100-continue', 'content-length': '4' }, agent: false });
    req.on('continue', () => {
      continued = true;
      req.end('data');
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ continued, status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
  assert.equal(result.continued, true);
  assert.equal(result.status, 200);
  assert.equal(result.body, 'got data');
  assert.equal(a.requests[0]!.headers.expect, undefined, 'Expect is answered by usher, not forwarded');
});

test('Expect: 100-continue with a body over the limit gets 413 without 100 Continue', async (t) => {
  const { a, u } = await echoSetup(t, (req, res) => req.resume().on('end', () => res.end()), { limits: { body: 10 } });
  const reply = await rawRequest(u.port, 'PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n');
  assert.equal(rawStatus(reply), 413);
  assert.doesNotMatch(reply, /100 Continue/);
  assert.match(reply, /reason: body_too_large/);
  assert.equal(a.requests.length, 0);
});

test('103 Early Hints is relayed as an interim response, then the final one', async (t) => {
  const { u } = await echoSetup(t, (req, res) => {
    req.resume();
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('final');
    });
  });
  const interim: { status: number; link: unknown }[] = [];
  const final = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${u.url}/`, { agent: false });
    req.on('information', (info) => interim.push({ status: info.statusCode, link: info.headers.link }));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(interim, [{ status: 103, link: '</style.css>; rel=preload; as=style' }]);
  assert.equal(final.status, 200);
  assert.equal(final.body, 'final');
});

test('response trailers pass through', async (t) => {
  const { u } = await echoSetup(t, (req, res) => {
    req.resume();
    res.writeHead(200, { trailer: 'x-checksum' });
    res.write('body');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
  });
  const r = await request(`${u.url}/`, { headers: { te: 'trailers' } });
  assert.equal(r.body, 'body');
  assert.equal(r.trailers['x-checksum'], 'abc123');
});
