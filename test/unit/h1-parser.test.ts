// The native client's response parser (src/upstream/h1/parser.ts): well-formed responses in
// every framing, fed whole and split at every byte, and the malformed ones that must fail
// (response-side smuggling: CL+TE, two Content-Lengths, bad chunk sizes, overlong heads and
// chunk lines, NUL/CR/LF in fields, obs-fold).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_HEAD, ResponseParser, type ResponseSink } from '../../src/upstream/h1/parser.js';

interface Parsed {
  interim: [number, string[]][];
  status: number;
  headers: string[];
  body: string;
  trailers: string[] | null;
  keepAlive: boolean;
  error: string;
  /** Bytes left over after the response (what the parser did not take). */
  rest: number;
}

class Recorder implements ResponseSink {
  interim: [number, string[]][] = [];
  status = 0;
  headers: string[] = [];
  body = '';
  trailers: string[] | null = null;
  onInterim(status: number, headers: string[]): void {
    this.interim.push([status, headers]);
  }
  onHead(status: number, headers: string[]): boolean {
    this.status = status;
    this.headers = headers;
    return true;
  }
  onBody(chunk: Buffer): boolean {
    this.body += chunk.toString('latin1');
    return true;
  }
  onComplete(trailers: string[]): void {
    this.trailers = trailers;
  }
}

/** Parses `data` in pieces of `step` bytes (0: whole); `end`: the connection closes after it. */
function parse(data: string, { step = 0, head = false, upgrade = false, end = false } = {}): Parsed {
  const r = new Recorder();
  const p = new ResponseParser(r);
  p.reset(head, upgrade);
  const buf = Buffer.from(data, 'latin1');
  let error = '';
  let rest = 0;
  const size = step === 0 ? buf.length : step;
  for (let i = 0; i < buf.length; i += size) {
    const piece = buf.subarray(i, Math.min(buf.length, i + size));
    const at = p.execute(piece, 0);
    if (at < 0) {
      error = p.error;
      break;
    }
    if (at < piece.length) {
      rest = buf.length - i - at;
      break;
    }
  }
  if (error === '' && end && r.trailers === null) p.finish();
  return { interim: r.interim, status: r.status, headers: r.headers, body: r.body, trailers: r.trailers, keepAlive: p.keepAlive, error, rest };
}

const VALID: [string, string, Partial<Parsed>, { head?: boolean; end?: boolean; upgrade?: boolean }?][] = [
  ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  spaced value \t\r\n\r\nhello', { status: 200, headers: ['Content-Length', '5', 'X-A', 'spaced value'], body: 'hello', trailers: [], keepAlive: true }],
  ['no reason phrase', 'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n', { status: 404, body: '', trailers: [] }],
  ['an empty reason phrase', 'HTTP/1.1 200 \r\ncontent-length: 2\r\n\r\nok', { status: 200, body: 'ok' }],
  ['obs-text in a value and the reason', 'HTTP/1.1 200 \xe9t\xe9\r\nX-A: caf\xe9\r\nContent-Length: 0\r\n\r\n', { headers: ['X-A', 'caf\xe9', 'Content-Length', '0'] }],
  ['chunked with extensions and trailers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;q="a b"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n', { body: 'hello world', trailers: ['X-Sum', '1', 'X-Other', '2'], keepAlive: true }],
  ['chunked, upper-case hex and leading zeros', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n00A\r\n0123456789\r\n0\r\n\r\n', { body: '0123456789', trailers: [] }],
  ['gzip, chunked: chunked frames it', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n', { body: 'ab' }],
  ['chunked, gzip: the body runs to the close', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nab\r\n0\r\n\r\n', { body: '2\r\nab\r\n0\r\n\r\n', trailers: [], keepAlive: false }, { end: true }],
  ['no length: read to the close', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nall of it', { body: 'all of it', trailers: [], keepAlive: false }, { end: true }],
  ['HEAD: no body whatever the length says', 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n', { body: '', trailers: [], keepAlive: true }, { head: true }],
  ['204 and 304 end at the head', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n', { status: 304, body: '', trailers: [] }],
  ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx', { keepAlive: false, body: 'x' }],
  ['HTTP/1.0 closes unless keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx', { keepAlive: false }],
  ['HTTP/1.0 with keep-alive', 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx', { keepAlive: true }],
  ['interim 100 dropped, 103 and 102 reported', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', { interim: [[103, ['Link', '</a.css>; rel=preload']], [102, []]], status: 200, body: 'ok' }],
  ['101 to an upgrade request stops at the head', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00', { status: 101, rest: 2 }, { upgrade: true }],
  ['bytes after a complete response are left', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', { body: 'ok', rest: 5 }],
];

for (const [name, data, want, opts] of VALID) {
  test(`parses: ${name}`, () => {
    const whole = parse(data, opts);
    assert.equal(whole.error, '', `${name}: no error`);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(whole[k as keyof Parsed], v, `${name}: ${k}`);
    // Split at every byte: the same result (state carried across reads).
    for (const step of [1, 2, 3, 7]) {
      const split = parse(data, { ...opts, step });
      assert.deepEqual({ ...split, rest: 0 }, { ...whole, rest: 0 }, `${name}: fed ${step} byte(s) at a time`);
    }
  });
}

const MALFORMED: [string, string, RegExp, { upgrade?: boolean }?][] = [
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /Content-Length and Transfer-Encoding/],
  ['Transfer-Encoding then Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', /Content-Length and Transfer-Encoding/],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /more than one Content-Length/],
  ['two equal Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', /more than one Content-Length/],
  ['a Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', /invalid Content-Length/],
  ['Content-Length: 5x', 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello', /invalid Content-Length/],
  ['Content-Length: -1', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
  ['an empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n', /invalid Content-Length/],
  ['a huge Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n', /invalid Content-Length/],
  ['chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', /chunked applied twice/],
  // RFC 9112 §7.1.1: whitespace after a chunk size only before ';' (BWS of chunk-ext); llhttp refuses these too.
  ['a chunk size followed by whitespace', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['a chunk size followed by other text', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 foo\r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['an empty chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['a chunk size with a sign', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['a 0x prefix', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', /chunk size/],
  ['a chunk size past 2^53', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', /chunk size too large/],
  ['a bare LF after the chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', /chunk size/],
  ['no CRLF after chunk data', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n', /no CRLF after chunk data/],
  ['a NUL in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\0\r\nhello\r\n0\r\n\r\n', /chunk extension/],
  ['an overlong chunk extension', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;${'a'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, /chunk extension too long/],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 2\r\n\r\nok', /obs-fold/],
  ['obs-fold with a tab', 'HTTP/1.1 200 OK\r\nX-A: a\r\n\tfolded\r\nContent-Length: 2\r\n\r\nok', /obs-fold/],
  ['a bare LF in the head', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 2\r\n\r\nok', /bare LF/],
  ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok', /bare CR/],
  ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok', /invalid character in a field value/],
  ['a DEL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 2\r\n\r\nok', /invalid character in a field value/],
  ['a NUL in a header name', 'HTTP/1.1 200 OK\r\nX\0A: 1\r\nContent-Length: 2\r\n\r\nok', /field name/],
  ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok', /field name/],
  ['an empty field name', 'HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\nok', /empty field name/],
  ['a field line without a colon', 'HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 2\r\n\r\nok', /field name/],
  ['a trailer with a NUL', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\0\r\n\r\n', /invalid character/],
  ['garbage instead of a status line', 'HTTTP/9 OK\r\n\r\n', /not an HTTP\/1.x status line/],
  ['HTTP/2.0', 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', /status line|version/],
  ['HTTP/1.2', 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', /unsupported HTTP version/],
  ['a two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', /status/],
  ['status 099', 'HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n', /invalid status code/],
  ['a four-digit status', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', /invalid status line/],
  ['a NUL in the reason phrase', 'HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n', /reason phrase/],
  ['a bare LF ending the status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /reason phrase|status line/],
  ['a 101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101 to a request/],
  ['an overlong head', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD)}\r\n\r\n`, /response head too large/],
  ['an overlong head that never ends', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD + 10)}`, /response head too large/],
  ['an overlong trailer section', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'a'.repeat(MAX_HEAD + 10)}`, /trailer section too large/],
];

for (const [name, data, why, opts] of MALFORMED) {
  test(`refuses: ${name}`, () => {
    for (const step of [0, 1, 5]) {
      const r = parse(data, { ...opts, step });
      assert.match(r.error, why, `${name} (fed ${step || 'whole'}): ${JSON.stringify(r.error)}`);
      assert.equal(r.trailers, null, `${name}: never reported complete`);
    }
  });
}

test('a pausing sink stops the parser after the head and after a body piece; execute() goes on from there', () => {
  const r = new Recorder();
  let pauseHead = true;
  let pauseBody = true;
  const sink: ResponseSink = {
    onInterim: (s, h) => r.onInterim(s, h),
    onHead: (s, h) => (r.onHead(s, h), !pauseHead),
    onBody: (c) => (r.onBody(c), !pauseBody),
    onComplete: (t) => r.onComplete(t),
  };
  const p = new ResponseParser(sink);
  p.reset(false, false);
  const buf = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
  const a = p.execute(buf, 0);
  assert.equal(r.status, 200);
  assert.equal(r.body, '', 'paused at the head: no body yet');
  pauseHead = false;
  const b = p.execute(buf, a);
  assert.equal(r.body, 'ab', 'paused after the first piece');
  pauseBody = false;
  const c = p.execute(buf, b);
  assert.equal(c, buf.length);
  assert.equal(r.body, 'abcd');
  assert.deepEqual(r.trailers, []);
});

test('a connection that ends mid-body is a cut response, not a complete one', () => {
  const r = new Recorder();
  const p = new ResponseParser(r);
  p.reset(false, false);
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), 0);
  assert.equal(p.finish(), false);
  assert.equal(r.trailers, null);
});
