// compress: real usher in front of a real upstream; every compressed body decoded with zlib's
// own decoders. Round trips per coding, q-value choices, no double encoding, the cases that are
// sent as they are (Range, no-transform, small, other types, HEAD/204/304), SSE events arriving
// one by one, and HTTP/2 downstream.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { ZSTD_AVAILABLE } from '../../src/filters/compress/index.js';
import { h2request, h2session } from '../helpers/h2.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, type TestUsher } from '../helpers/usher.js';

const TEXT = Buffer.from('<p>usher compresses this line, and the next one, and so on.</p>\n'.repeat(400));
const GZIPPED = zlib.gzipSync(TEXT);

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, raw: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function decode(coding: string | undefined, raw: Buffer): Buffer {
  switch (coding) {
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'br':
      return zlib.brotliDecompressSync(raw);
    case 'zstd':
      return (zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer }).zstdDecompressSync(raw);
    default:
      return raw;
  }
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const url = new URL(req.url!, 'http://x');
  const send = (status: number, h: Record<string, string>, body?: Buffer | string) => {
    res.writeHead(status, h);
    res.end(body);
  };
  switch (url.pathname) {
    case '/text':
      return send(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(TEXT.length), etag: '"v1"', vary: 'Origin' }, req.method === 'HEAD' ? undefined : TEXT);
    case '/chunked':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(TEXT.subarray(0, 1000));
      return void res.end(TEXT.subarray(1000));
    case '/gzipped':
      return send(200, { 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': String(GZIPPED.length), etag: '"g"' }, GZIPPED);
    case '/identity':
      return send(200, { 'content-type': 'text/plain', 'content-encoding': 'identity' }, TEXT);
    case '/no-transform':
      return send(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform' }, TEXT);
    case '/small':
      return send(200, { 'content-type': 'text/plain', 'content-length': '5' }, 'small');
    case '/png':
      return send(200, { 'content-type': 'image/png' }, TEXT);
    case '/untyped':
      return send(200, {}, TEXT);
    case '/empty':
      return send(200, { 'content-type': 'text/plain', 'content-length': '0' });
    case '/204':
      return send(204, { 'content-type': 'text/plain' });
    case '/304':
      return send(304, { etag: '"v1"' });
    case '/range':
      return send(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-9/${TEXT.length}` }, TEXT.subarray(0, 10));
    case '/weak':
      return send(200, { 'content-type': 'text/plain', etag: 'W/"w"', vary: 'accept-encoding' }, TEXT);
    default:
      return send(404, { 'content-type': 'text/plain' }, 'nope');
  }
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, extra: Record<string, unknown> = {}): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app', handler);
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app', compress: {} }], ...extra });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

test('round trips: gzip, br and (where Node has it) zstd, decoded by zlib; Content-Length dropped, ETag weakened, Vary added', async (t) => {
  const { u } = await setup(t);
  const codings = ZSTD_AVAILABLE ? ['gzip', 'br', 'zstd'] : ['gzip', 'br'];
  for (const coding of codings) {
    for (const path of ['/text', '/chunked']) {
      const r = await get(`${u.url}${path}`, { 'accept-encoding': coding });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], coding, `${coding} ${path}`);
      assert.equal(r.headers['content-length'], undefined);
      assert.ok(r.raw.length < TEXT.length / 4, `${coding} ${path}: ${r.raw.length} bytes`);
      assert.deepEqual(decode(coding, r.raw), TEXT);
      if (path === '/text') {
        assert.equal(r.headers.etag, 'W/"v1"');
        assert.equal(r.headers.vary, 'Origin, Accept-Encoding');
      }
    }
  }
  // Without Accept-Encoding: as it is, but Vary says the representation depends on it.
  const plain = await get(`${u.url}/text`);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers['content-length'], String(TEXT.length));
  assert.equal(plain.headers.etag, '"v1"');
  assert.equal(plain.headers.vary, 'Origin, Accept-Encoding');
  assert.deepEqual(plain.raw, TEXT);
  // A weak ETag stays as it is; a Vary that names Accept-Encoding is not repeated.
  const weak = await get(`${u.url}/weak`, { 'accept-encoding': 'gzip' });
  assert.equal(weak.headers.etag, 'W/"w"');
  assert.equal(weak.headers.vary, 'accept-encoding');
  assert.deepEqual(decode('gzip', weak.raw), TEXT);
});

test('q-value choices and q=0 refusals', async (t) => {
  const { u } = await setup(t);
  const cases: [string, string | undefined][] = [
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['*', ZSTD_AVAILABLE ? 'zstd' : 'br'],
    ['*;q=0.5, br;q=0, zstd;q=0', 'gzip'],
    ['deflate', undefined],
    ['gzip;q=0.4, identity;q=0.9', undefined],
    ['gzip;q=0, br;q=0', undefined],
    ['', undefined],
  ];
  for (const [ae, want] of cases) {
    const r = await get(`${u.url}/text`, { 'accept-encoding': ae });
    assert.equal(r.headers['content-encoding'], want, JSON.stringify(ae));
    assert.deepEqual(decode(want, r.raw), TEXT);
  }
  // identity refused: even a body under min_size is compressed...
  const small = await get(`${u.url}/small`, { 'accept-encoding': 'gzip, identity;q=0' });
  assert.equal(small.headers['content-encoding'], 'gzip');
  assert.equal(decode('gzip', small.raw).toString(), 'small');
  const smallOk = await get(`${u.url}/small`, { 'accept-encoding': 'gzip' });
  assert.equal(smallOk.headers['content-encoding'], undefined);
  assert.equal(smallOk.raw.toString(), 'small');
  // ...and with nothing acceptable (*;q=0) the response goes as it is, as nginx and Caddy do.
  const none = await get(`${u.url}/text`, { 'accept-encoding': '*;q=0' });
  assert.equal(none.headers['content-encoding'], undefined);
  assert.deepEqual(none.raw, TEXT);
});

test('never twice, never against the rules: upstream-encoded, identity, no-transform, Range, small, other types, HEAD, 204, 304', async (t) => {
  const { u, up } = await setup(t);
  const ae = { 'accept-encoding': 'gzip, br' };
  const g = await get(`${u.url}/gzipped`, ae);
  assert.equal(g.headers['content-encoding'], 'gzip');
  assert.equal(g.headers['content-length'], String(GZIPPED.length));
  assert.equal(g.headers.etag, '"g"');
  assert.deepEqual(g.raw, GZIPPED); // the upstream's bytes, not gzip of gzip
  assert.deepEqual(zlib.gunzipSync(g.raw), TEXT);
  // An upstream's Content-Encoding: identity is no coding: compressed, one Content-Encoding.
  const id = await get(`${u.url}/identity`, ae);
  assert.equal(id.headers['content-encoding'], 'br');
  assert.deepEqual(decode('br', id.raw), TEXT);
  for (const [path, headers, want] of [
    ['/no-transform', ae, TEXT],
    ['/text', { ...ae, 'cache-control': 'no-transform' }, TEXT],
    ['/text', { ...ae, range: 'bytes=0-9' }, TEXT],
    ['/range', { ...ae, range: 'bytes=0-9' }, TEXT.subarray(0, 10)],
    ['/png', ae, TEXT],
    ['/untyped', ae, TEXT],
    ['/empty', ae, Buffer.alloc(0)],
  ] as [string, Record<string, string>, Buffer][]) {
    const r = await get(`${u.url}${path}`, headers);
    assert.equal(r.headers['content-encoding'], undefined, `${path} ${JSON.stringify(headers)}`);
    assert.deepEqual(r.raw, want, path);
  }
  // Any status with a body is compressed (as Caddy's encode; nginx: 200, 403 and 404 only).
  const e404 = await get(`${u.url}/missing`, ae);
  assert.equal(e404.status, 404);
  assert.equal(e404.headers['content-encoding'], 'br');
  assert.equal(decode('br', e404.raw).toString(), 'nope');
  // HEAD: the head a GET would get (coding, weak ETag, no length), no body.
  const head = await get(`${u.url}/text`, ae, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-encoding'], 'br');
  assert.equal(head.headers['content-length'], undefined);
  assert.equal(head.headers.etag, 'W/"v1"');
  assert.equal(head.raw.length, 0);
  const n204 = await get(`${u.url}/204`, ae);
  assert.equal(n204.status, 204);
  assert.equal(n204.headers['content-encoding'], undefined);
  // 304: it stands for the compressed 200, so its validator and Vary match that one.
  const n304 = await get(`${u.url}/304`, { ...ae, 'if-none-match': 'W/"v1"' });
  assert.equal(n304.status, 304);
  assert.equal(n304.headers['content-encoding'], undefined);
  assert.equal(n304.headers.etag, 'W/"v1"');
  assert.equal(n304.headers.vary, 'Accept-Encoding');
  assert.equal(n304.raw.length, 0);
  // The upstream always sees the client's Accept-Encoding as it was sent.
  assert.equal(up.requests.at(-1)!.headers['accept-encoding'], 'gzip, br');
});

test('SSE: each event arrives (decoded) before the upstream sends the next one', async (t) => {
  const events = 5;
  let next: (() => void) | undefined;
  const up = await startUpstream('sse', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let i = 0;
    next = () => {
      if (i === events) return void res.end();
      res.write(`id: ${i}\ndata: ${'event payload '.repeat(20)}${i}\n\n`);
      i++;
    };
    next();
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app', compress: {} }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  for (const coding of ZSTD_AVAILABLE ? ['gzip', 'br', 'zstd'] : ['gzip', 'br']) {
    const seen: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${u.url}/events`, { headers: { 'accept-encoding': coding }, agent: false }, (res) => {
        assert.equal(res.headers['content-encoding'], coding);
        const dec =
          coding === 'gzip'
            ? zlib.createGunzip()
            : coding === 'br'
              ? zlib.createBrotliDecompress()
              : (zlib as unknown as { createZstdDecompress(): zlib.Gunzip }).createZstdDecompress();
        let text = '';
        dec.on('data', (c: Buffer) => {
          text += c.toString();
          let end: number;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const ev = text.slice(0, end);
            text = text.slice(end + 2);
            seen.push(Number(/^id: (\d+)/.exec(ev)![1]));
            // Lockstep: the upstream writes the next event only once this one was decoded, so a
            // compressor that held an event back would stall the stream (and fail the test).
            next!();
          }
        });
        dec.on('end', resolve);
        dec.on('error', reject);
        res.pipe(dec);
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(seen, [0, 1, 2, 3, 4], coding);
  }
});

test('event_stream: off sends SSE as it is', async (t) => {
  const up = await startUpstream('sse', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end('data: x\n\n'.repeat(100));
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app', compress: { event_stream: 'off' } }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const r = await get(`${u.url}/e`, { 'accept-encoding': 'gzip' });
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.raw.toString(), 'data: x\n\n'.repeat(100));
});

test('HTTP/2 downstream (h2c): compressed and decoded; HEAD too', async (t) => {
  const { u } = await setup(t, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const s = await h2session(u.url);
  t.after(() => void s.close());
  for (const coding of ['gzip', 'br']) {
    const r = await h2request(s, { ':path': '/chunked', 'accept-encoding': coding });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], coding);
    assert.equal(r.headers['content-length'], undefined);
    assert.deepEqual(decode(coding, r.body), TEXT);
  }
  const head = await h2request(s, { ':path': '/text', ':method': 'HEAD', 'accept-encoding': 'gzip' });
  assert.equal(head.headers['content-encoding'], 'gzip');
  assert.equal(head.body.length, 0);
});

test('top level as the default: inherited, overridden per route, off with compress: false; local replies not compressed', async (t) => {
  const up = await startUpstream('app', handler);
  const u = await startUsher({
    compress: { algorithms: ['gzip'] },
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'off', match: { path: '/off/' }, upstream: 'app', rewrite: { strip_prefix: '/off' }, compress: false },
      { name: 'br', match: { path: '/br/' }, upstream: 'app', rewrite: { strip_prefix: '/br' }, compress: { algorithms: ['br'] } },
      { name: 'local', match: { path: '/local' }, respond: { body: TEXT.toString(), headers: { 'content-type': 'text/html' } } },
      { name: 'default', upstream: 'app' },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const ae = { 'accept-encoding': 'br, gzip' };
  const inherited = await get(`${u.url}/text`, ae);
  assert.equal(inherited.headers['content-encoding'], 'gzip');
  assert.deepEqual(decode('gzip', inherited.raw), TEXT);
  const br = await get(`${u.url}/br/text`, ae);
  assert.equal(br.headers['content-encoding'], 'br');
  assert.deepEqual(decode('br', br.raw), TEXT);
  const off = await get(`${u.url}/off/text`, ae);
  assert.equal(off.headers['content-encoding'], undefined);
  assert.equal(off.headers.vary, 'Origin');
  assert.deepEqual(off.raw, TEXT);
  const local = await get(`${u.url}/local`, ae);
  assert.equal(local.headers['content-encoding'], undefined);
  assert.deepEqual(local.raw, TEXT);
});
