// Malformed and smuggling requests, each on a raw TCP connection (RFC 9112 §2.2, §3, §5, §6, §7).
// Every one must be refused with one local reply, reach no upstream, and leave usher serving.

import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { rawRequest, rawStatus, request } from '../helpers/client.js';
import { assertLocalReply, RawConnection, responseCount, within } from '../helpers/raw.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, proxyTo } from '../helpers/usher.js';

interface Case {
  name: string;
  data: string;
  status: number;
  reason: string;
}

const bad = (name: string, data: string, reason = 'bad_request'): Case => ({ name, data, status: 400, reason });
const framing = (name: string, data: string): Case => bad(name, data, 'ambiguous_framing');

const CASES: Case[] = [
  // RFC 9112 §6.3 (3): CL and TE together is a smuggling attempt; refused whichever comes first.
  framing('Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
  framing('Transfer-Encoding and Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'),
  // RFC 9112 §6.3 (5): different Content-Lengths, or one that is not a number.
  framing('two different Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'),
  framing('Content-Length: 5x', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello'),
  framing('Content-Length: -1', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
  // RFC 9112 §6.3 (4): in a request, chunked must be the final coding: 400 and close.
  framing('Transfer-Encoding: gzip', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello'),
  framing('Transfer-Encoding: xchunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'),
  framing('Transfer-Encoding: chunked, gzip', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'),
  // RFC 9112 §6.1: chunked is applied at most once.
  framing('Transfer-Encoding: chunked, chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'),
  // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
  framing('Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
  // RFC 9112 §6.1: a coding usher does not implement, with chunked last: 501.
  {
    name: 'Transfer-Encoding: gzip, chunked',
    data: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    status: 501,
    reason: 'unsupported_transfer_encoding',
  },
  framing('a bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'),
  // RFC 9112 §2.2: bare CR is invalid; bare LF is refused (a MAY that strict parsers decline).
  bad('a bare CR in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'),
  bad('a bare CR ending a header line', 'GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n'),
  bad('bare LF line endings', 'GET / HTTP/1.1\nHost: x\n\n'),
  bad('a NUL in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n'),
  // RFC 9112 §5.2: obs-fold in a request: 400 (or unfold; usher refuses).
  bad('obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n'),
  bad('invalid characters in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n'),
  // RFC 9112 §5.1: whitespace between a field name and the colon MUST be refused.
  bad('whitespace before the colon', 'GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n'),
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
  bad('no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 'missing_host'),
  bad('two Host headers', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 'missing_host'),
  // RFC 9112 §3.2: a target is origin-form ("/..."), absolute-form, authority-form (CONNECT) or "*".
  bad('a request target without a leading slash', 'GET foo HTTP/1.1\r\nHost: x\r\n\r\n'),
  { name: 'CONNECT', data: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', status: 405, reason: 'method_not_allowed' },
];

test('malformed requests are refused, reach no upstream, and usher keeps serving', async (t) => {
  const { up: up, u } = await proxyTo(t, 'a');
  for (const [i, c] of CASES.entries()) {
    await t.test(c.name, async () => {
      const before = up.requests.length;
      const reply = await rawRequest(u.port, c.data);
      assertLocalReply(reply, c.status, c.reason, c.name);
      // A normal request afterwards: usher still answers, and it is all the upstream saw.
      const after = await request(`${u.url}/after-${i}`);
      assert.equal(after.status, 200, `${c.name}: a normal request afterwards`);
      assert.deepEqual(up.requests.slice(before).map((r) => `${r.method} ${r.url}`), [`GET /after-${i}`], `${c.name}: what the upstream saw`);
    });
  }
});

test('HTTP/1.0 without Host is served', async (t) => {
  const { up: up, u } = await proxyTo(t, 'a');
  const reply = await rawRequest(u.port, 'GET /old HTTP/1.0\r\n\r\n');
  assert.equal(rawStatus(reply), 200);
  assert.match(reply, /\r\n\r\na$/);
  assert.deepEqual(up.requests.map((r) => r.url), ['/old']);
});

test('HTTP/0.9 and HTTP/2.0 request lines on an HTTP/1 listener get 505 and reach no upstream', async (t) => {
  const { up: up, u } = await proxyTo(t, 'a');
  for (const line of ['GET /\r\n\r\n', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n']) {
    const reply = await rawRequest(u.port, line);
    assert.equal(rawStatus(reply), 505, JSON.stringify(line));
    assert.match(reply, /reason: http_version_not_supported/);
  }
  assert.equal(up.requests.length, 0);
});

test('request smuggling: CL.TE with a request hidden in the body never reaches the upstream', async (t) => {
  const { up: up, u } = await proxyTo(t, 'a');
  const reply = await rawRequest(
    u.port,
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  assertLocalReply(reply, 400, 'ambiguous_framing');
  const after = await request(`${u.url}/after`);
  assert.equal(after.status, 200);
  assert.deepEqual(up.requests.map((r) => r.url), ['/after'], 'neither the POST nor /smuggled reached the upstream');
});

test('a bad chunk after the response started: the downstream is cut, no 400 spliced into the response', async (t) => {
  let upstreamAborted = false;
  const up = await startUpstream('a', (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('started');
    req.resume();
    req.on('end', () => res.end());
    req.on('close', () => (upstreamAborted = !req.complete));
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  await waitFor(() => c.received.includes('started'), 5000, 'the response to start');
  c.write('zz\r\nhello\r\n');
  await within(c.closed, 5000, 'the connection to close');
  assert.equal(rawStatus(c.received), 200);
  assert.equal(responseCount(c.received), 1, `one response only: ${JSON.stringify(c.received)}`);
  assert.ok(!c.received.endsWith('0\r\n\r\n'), 'the cut response is not ended as complete');
  await waitFor(() => upstreamAborted, 5000, 'the upstream request to be aborted');
  const after = await request(`${u.url}/after`);
  assert.equal(after.status, 200);
});
