// The downstream request parser (src/server/h1/parser.ts): well-formed requests in every framing,
// fed whole and split at every byte boundary, pipelined requests in one chunk, and the malformed
// ones with the reason code (and so the status) the listener will answer with: request
// smuggling's CL+TE, duplicate Content-Length, TE not ending in chunked, bare CR/LF, obs-fold,
// bad token bytes, chunk-size overflow, bad chunk extensions, and the 413/414/431 limits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REASONS } from '../../src/errors/codes.js';
import {
  DEFAULT_REQUEST_LIMITS,
  FRAMING_CHUNKED,
  FRAMING_LENGTH,
  FRAMING_NONE,
  RequestParser,
  type RequestHead,
  type RequestLimits,
  type RequestSink,
} from '../../src/server/h1/parser.js';

interface Req {
  head: RequestHead;
  body: string;
  /** Body pieces were views of the input, never copies. */
  views: boolean;
  trailers: string[] | null;
}

interface Parsed {
  requests: Req[];
  error: string;
  reason: string;
  /** Bytes the parser did not take (after an upgrade). */
  rest: number;
}

class Recorder implements RequestSink {
  requests: Req[] = [];
  constructor(private readonly input: ArrayBufferLike) {}
  onRequest(head: RequestHead): boolean {
    this.requests.push({ head, body: '', views: true, trailers: null });
    return true;
  }
  onBody(chunk: Buffer): boolean {
    const r = this.requests[this.requests.length - 1]!;
    r.body += chunk.toString('latin1');
    if (chunk.buffer !== this.input) r.views = false;
    return true;
  }
  onComplete(trailers: string[]): boolean {
    this.requests[this.requests.length - 1]!.trailers = trailers;
    return true;
  }
}

/** Parses `data` in pieces of `step` bytes (0: whole), or split at the given offsets. */
function parse(data: string, { step = 0, cuts, limits }: { step?: number; cuts?: number[]; limits?: Partial<RequestLimits> } = {}): Parsed {
  const all = Buffer.from(data, 'latin1');
  // One backing store of its own for the whole input (Buffer.from and concat pool small ones on
  // node's shared slab, where a copied body would share the ArrayBuffer too and pass the check).
  const buf = Buffer.from(new Uint8Array(all).buffer);
  const r = new Recorder(buf.buffer);
  const p = new RequestParser(r, { ...DEFAULT_REQUEST_LIMITS, ...limits });
  const bounds = cuts ?? [];
  if (cuts === undefined) for (let i = step || buf.length; i < buf.length; i += step || buf.length) bounds.push(i);
  let error = '';
  let reason = '';
  let rest = 0;
  let from = 0;
  for (const to of [...bounds, buf.length]) {
    const piece = buf.subarray(from, to);
    from = to;
    let at = 0;
    while (at < piece.length) {
      const next = p.execute(piece, at);
      if (next < 0) break;
      if (p.upgraded) {
        at = next;
        break;
      }
      at = next;
    }
    if (p.error !== '') {
      error = p.error;
      reason = p.reason;
      break;
    }
    if (p.upgraded) {
      rest = piece.length - at + (buf.length - to);
      break;
    }
  }
  return { requests: r.requests, error, reason, rest };
}

/** What a request's fields say, compared (the views flag only where the body is in one piece). */
function summary(r: Req): object {
  const { head, body, trailers } = r;
  return { ...head, body, trailers };
}

const GET = 'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n';

const VALID: [string, string, Partial<RequestHead & { body: string; trailers: string[] }>[], number?][] = [
  ['a GET', GET, [{ method: 'GET', target: '/index.html?q=1', minor: 1, headers: ['Host', 'example.com', 'User-Agent', 't/1', 'Accept', '*/*'], framing: FRAMING_NONE, contentLength: 0, keepAlive: true, upgrade: false, body: '', trailers: [] }]],
  ['values lose surrounding whitespace, keep inner', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: \t spaced  value \t\r\nX-B:\r\n\r\n', [{ headers: ['Host', 'a', 'X-A', 'spaced  value', 'X-B', ''] }]],
  ['obs-text in a value, names as sent', 'GET / HTTP/1.1\r\nhOsT: a\r\nX-A: caf\xe9\r\n\r\n', [{ headers: ['hOsT', 'a', 'X-A', 'caf\xe9'] }]],
  ['a Content-Length body', 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', [{ method: 'POST', framing: FRAMING_LENGTH, contentLength: 5, body: 'hello', trailers: [] }]],
  ['Content-Length: 0', 'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', [{ method: 'PUT', framing: FRAMING_NONE, contentLength: 0, body: '' }]],
  ['chunked with extensions and trailers', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;q="a b"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n', [{ framing: FRAMING_CHUNKED, contentLength: -1, body: 'hello world', trailers: ['X-Sum', '1', 'X-Other', '2'] }]],
  ['chunked, upper case, leading zeros', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n00A\r\n0123456789\r\n0\r\n\r\n', [{ framing: FRAMING_CHUNKED, body: '0123456789', trailers: [] }]],
  ['HTTP/1.0 closes unless keep-alive', 'GET / HTTP/1.0\r\n\r\n', [{ minor: 0, keepAlive: false, headers: [] }]],
  ['HTTP/1.0 with keep-alive', 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', [{ minor: 0, keepAlive: true }]],
  ['Connection: close', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n', [{ keepAlive: false }]],
  ['a custom method, absolute and asterisk forms', 'PURGE http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', [{ method: 'PURGE', target: 'http://a.example/x' }, { method: 'OPTIONS', target: '*' }]],
  ['Expect: 100-continue', 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok', [{ expectContinue: true, body: 'ok' }]],
  ['empty lines before a request are skipped', '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n', [{ target: '/' }, { target: '/2' }]],
  [
    'three pipelined requests in one chunk',
    `${GET}POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n`,
    [{ method: 'GET', body: '' }, { method: 'POST', target: '/p', body: 'abc' }, { target: '/c', body: 'z', trailers: [] }],
  ],
  ['a WebSocket upgrade stops at its head; the rest is the tunnel\'s', 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00', [{ upgrade: true, framing: FRAMING_NONE }], 2],
  ['Upgrade without Connection: upgrade is no upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n', [{ upgrade: false }]],
  ['CONNECT is an upgrade', 'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\nTLS', [{ method: 'CONNECT', target: 'a.example:443', upgrade: true }], 3],
];

for (const [name, data, want, rest = 0] of VALID) {
  test(`parses: ${name}`, () => {
    const whole = parse(data);
    assert.equal(whole.error, '', `${name}: ${whole.error}`);
    assert.equal(whole.rest, rest, `${name}: bytes left`);
    assert.equal(whole.requests.length, want.length, `${name}: requests`);
    want.forEach((w, i) => {
      const got = summary(whole.requests[i]!) as Record<string, unknown>;
      for (const [k, v] of Object.entries(w)) assert.deepEqual(got[k], v, `${name}: request ${i} ${k}`);
      assert.equal(whole.requests[i]!.views, true, `${name}: body pieces are views of the input`);
    });
    // Split at every byte boundary (one cut), and fed 1, 2, 3, 7 bytes at a time: the same.
    const expect = whole.requests.map(summary);
    const len = Buffer.byteLength(data, 'latin1');
    for (let cut = 1; cut < len; cut++) {
      const split = parse(data, { cuts: [cut] });
      assert.equal(split.error, '', `${name} cut at ${cut}: ${split.error}`);
      assert.deepEqual(split.requests.map(summary), expect, `${name}: cut at ${cut}`);
    }
    for (const step of [1, 2, 3, 7]) {
      const split = parse(data, { step });
      assert.deepEqual(split.requests.map(summary), expect, `${name}: fed ${step} byte(s) at a time`);
      assert.equal(split.rest, rest, `${name}: fed ${step}: bytes left`);
    }
  });
}

const CHUNKED = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
const LIMITS: Partial<RequestLimits> = { requestLine: 64, headerSize: 256, headerCount: 4, body: 10 };

const MALFORMED: [string, string, string, RegExp, Partial<RequestLimits>?][] = [
  ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'ambiguous_framing', /Content-Length and Transfer-Encoding/],
  ['Transfer-Encoding then Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', 'ambiguous_framing', /Content-Length and Transfer-Encoding/],
  ['two equal Content-Lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 'ambiguous_framing', /more than one Content-Length/],
  ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello', 'ambiguous_framing', /invalid Content-Length/],
  ['Content-Length: +5', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello', 'ambiguous_framing', /invalid Content-Length/],
  ['an empty Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 'ambiguous_framing', /invalid Content-Length/],
  ['a 20-digit Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n', 'ambiguous_framing', /invalid Content-Length/],
  ['Transfer-Encoding: gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 'ambiguous_framing', /final coding/],
  ['chunked, gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'ambiguous_framing', /final coding/],
  ['chunked twice (one field)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'ambiguous_framing', /chunked twice/],
  ['chunked twice (two fields)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'ambiguous_framing', /chunked twice/],
  ['an empty Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n', 'ambiguous_framing', /empty element/],
  ['chunked and an empty second Transfer-Encoding line', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n', 'ambiguous_framing', /empty element/],
  ['chunked with an empty list element', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, \r\n\r\n0\r\n\r\n', 'ambiguous_framing', /empty element/],
  ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'ambiguous_framing', /HTTP\/1.0/],
  ['gzip, chunked: 501', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'unsupported_transfer_encoding', /other than chunked/],
  ['gzip then chunked in two fields: 501', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', 'unsupported_transfer_encoding', /other than chunked/],
  ['a chunk size that is not hex', `${CHUNKED}zz\r\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['an empty chunk size', `${CHUNKED}\r\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['a chunk size with a sign', `${CHUNKED}-5\r\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['a 0x prefix', `${CHUNKED}0x5\r\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['a chunk size past 2^53', `${CHUNKED}fffffffffffffffff\r\n`, 'ambiguous_framing', /chunk size too large/],
  ['a chunk size then junk', `${CHUNKED}5 junk\r\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['a bare LF after the chunk size', `${CHUNKED}5\nhello\r\n0\r\n\r\n`, 'ambiguous_framing', /chunk size/],
  ['no CRLF after chunk data', `${CHUNKED}5\r\nhello!\r\n0\r\n\r\n`, 'ambiguous_framing', /no CRLF after chunk data/],
  ['a bare LF in a chunk extension', `${CHUNKED}5;a\nhello\r\n0\r\n\r\n`, 'bad_request', /chunk extension/],
  ['an overlong chunk extension', `${CHUNKED}5;${'a'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, 'bad_request', /chunk extension too long/],
  ['a trailer with a NUL', `${CHUNKED}0\r\nX-T: a\0\r\n\r\n`, 'bad_request', /invalid character/],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n  folded\r\n\r\n', 'bad_request', /obs-fold/],
  ['a bare LF ending a field', 'GET / HTTP/1.1\r\nHost: a\nX-B: 2\r\n\r\n', 'bad_request', /bare LF/],
  ['LF-only line endings', 'GET / HTTP/1.1\nHost: a\n\n', 'bad_request', /bare LF|request target|request line/],
  ['a bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n', 'bad_request', /bare CR/],
  ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n', 'bad_request', /field value/],
  ['a DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n', 'bad_request', /field value/],
  ['a space in a field name', 'GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n', 'bad_request', /field name/],
  ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 2\r\n\r\nok', 'bad_request', /field name/],
  ['a "@" in a field name', 'GET / HTTP/1.1\r\nHost: a\r\nX@A: 1\r\n\r\n', 'bad_request', /field name/],
  ['an empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n', 'bad_request', /empty field name/],
  ['a line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n', 'bad_request', /field name/],
  ['a "(" in the method', 'GE(T / HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /method/],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /more than one space/],
  ['a target in no form of RFC 9112 §3.2', 'GET ,/ HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /invalid request target/],
  ['a target that starts with a quote', 'GET "/ HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /invalid request target/],
  ['"*" with more after it', 'OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /invalid request target/],
  ['a tab in the target', 'GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /request target/],
  ['a NUL in the target', 'GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /request target/],
  ['obs-text in the target (as llhttp: percent-encode it)', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /request target/],
  ['a bare CR before the request line', '\rGET / HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /bare CR before/],
  ['a bare LF before the request line', '\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 'bad_request', /bare LF before/],
  ['HTTP/0.9', 'GET /\r\n\r\n', 'bad_request', /HTTP\/0.9/],
  ['a lower-case version', 'GET / http/1.1\r\nHost: a\r\n\r\n', 'bad_request', /HTTP version/],
  ['HTTP/1.1 then a space', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 'bad_request', /request line ending/],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 'http_version_not_supported', /HTTP\/2.0/],
  ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'http_version_not_supported', /HTTP\/2.0/],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 'http_version_not_supported', /HTTP\/1.2/],
  ['a long request line', `GET /${'a'.repeat(70)} HTTP/1.1\r\nHost: a\r\n\r\n`, 'request_line_too_long', /request line too long/, LIMITS],
  ['a long request line that never ends', `GET /${'a'.repeat(300)}`, 'request_line_too_long', /request line too long/, LIMITS],
  ['a long head', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(300)}\r\n\r\n`, 'headers_too_large', /request head too large/, LIMITS],
  ['a long head that never ends', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(300)}`, 'headers_too_large', /request head too large/, LIMITS],
  ['too many fields', 'GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n', 'too_many_headers', /too many header fields/, LIMITS],
  ['a long trailer section', `${CHUNKED}0\r\nX-T: ${'a'.repeat(300)}\r\n\r\n`, 'headers_too_large', /trailer section too large/, LIMITS],
  ['a Content-Length past the body limit', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', 'body_too_large', /Content-Length is larger/, LIMITS],
  ['chunks past the body limit', `${CHUNKED}6\r\nhello!\r\n5\r\nworld\r\n0\r\n\r\n`, 'body_too_large', /chunked body is larger/, LIMITS],
  ['a bad second request after a good one', `${GET}GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n`, 'bad_request', /field value/],
];

for (const [name, data, reason, why, limits] of MALFORMED) {
  test(`refuses: ${name} (${REASONS[reason as keyof typeof REASONS].status})`, () => {
    const len = Buffer.byteLength(data, 'latin1');
    // Whole, 1 and 5 bytes at a time, and (short inputs) one cut at every byte boundary.
    const ways: { step?: number; cuts?: number[] }[] = [{}, { step: 1 }, { step: 5 }];
    if (len < 200) for (let cut = 1; cut < len; cut++) ways.push({ cuts: [cut] });
    for (const way of ways) {
      const r = parse(data, { ...way, limits });
      const how = JSON.stringify(way);
      assert.match(r.error, why, `${name} ${how}: ${JSON.stringify(r.error)}`);
      assert.equal(r.reason, reason, `${name} ${how}: reason`);
      for (const req of r.requests.slice(data.startsWith(GET) ? 1 : 0)) assert.equal(req.trailers, null, `${name}: never reported complete`);
    }
  });
}

test('a pausing sink stops execute() after a head, after a body piece and after each pipelined request', () => {
  let pauseHead = true;
  let pauseBody = true;
  let pauseEnd = true;
  const seen: string[] = [];
  const sink: RequestSink = {
    onRequest: (h) => (seen.push(`head ${h.target}`), !pauseHead),
    onBody: (c) => (seen.push(`body ${c.toString()}`), !pauseBody),
    onComplete: () => (seen.push('end'), !pauseEnd),
  };
  const p = new RequestParser(sink);
  const buf = Buffer.from(`POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n${GET}${GET}`);
  const a = p.execute(buf, 0);
  assert.deepEqual(seen, ['head /1'], 'paused at the head: no body yet');
  pauseHead = false;
  const b = p.execute(buf, a);
  assert.deepEqual(seen, ['head /1', 'body ab'], 'paused after the first piece');
  pauseBody = false;
  const c = p.execute(buf, b);
  assert.deepEqual(seen.slice(2), ['body cd', 'end'], 'stopped after the first request');
  const d = p.execute(buf, c);
  assert.deepEqual(seen.slice(4), ['head /index.html?q=1', 'end'], 'stopped after the second');
  assert.equal(d, buf.length - GET.length);
  pauseEnd = false;
  assert.equal(p.execute(buf, d), buf.length);
  assert.equal(seen.length, 8);
  assert.equal(p.finish(), true, 'between requests: a clean close');
});

test('a connection that ends mid-head or mid-body is a cut request', () => {
  const sink: RequestSink = { onRequest: () => true, onBody: () => true, onComplete: () => true };
  const p = new RequestParser(sink);
  p.execute(Buffer.from('GET / HT'), 0);
  assert.equal(p.finish(), false, 'mid-head');
  const q = new RequestParser(sink);
  q.execute(Buffer.from('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'), 0);
  assert.equal(q.finish(), false, 'mid-body');
});

test('a request line that breaks the limit is refused before its end arrives (414, not a wait for 431)', () => {
  const sink: RequestSink = { onRequest: () => true, onBody: () => true, onComplete: () => true };
  const p = new RequestParser(sink, { ...DEFAULT_REQUEST_LIMITS, requestLine: 100 });
  assert.equal(p.execute(Buffer.from(`GET /${'a'.repeat(90)}`), 0), 95, 'not yet');
  assert.equal(p.execute(Buffer.from('a'.repeat(20)), 0), -1);
  assert.equal(p.reason, 'request_line_too_long');
  assert.equal(REASONS[p.reason].status, 414);
});
