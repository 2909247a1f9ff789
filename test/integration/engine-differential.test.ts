// The native HTTP/1.1 client against undici (issue #17): a few hundred generated upstream
// responses, valid and malformed, from one raw-socket upstream, each fetched through an
// `engine: native` upstream and an `engine: undici` one of the same usher; what the client got
// (status, fields, body, or a reset; usher's reason code on a 502) must be the same. Seeded, so
// a failure names a case that can be replayed.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { seeded } from '../helpers/rng.js';
import { startUsher } from '../helpers/usher.js';

interface Case {
  /** What the upstream writes. */
  response: string;
  /** The upstream closes the connection after writing it. */
  close: boolean;
  /** How it was made (for the failure message). */
  what: string;
}

const STATUSES = [200, 200, 200, 201, 204, 206, 301, 304, 404, 410, 500];
const MUTATIONS: [string, (head: string[], body: string) => { head: string[]; body: string } | string][] = [
  ['CL and TE', (h, b) => ({ head: [...h, 'Content-Length: 3', 'Transfer-Encoding: chunked'], body: b })],
  ['two Content-Lengths', (h, b) => ({ head: [...h.filter((x) => !/^content-length/i.test(x)), 'Content-Length: 2', 'Content-Length: 3'], body: b })],
  ['an invalid Content-Length', (h, b) => ({ head: [...h.filter((x) => !/^(content-length|transfer-encoding)/i.test(x)), 'Content-Length: 1x'], body: b })],
  ['obs-fold', (h, b) => ({ head: [...h, 'X-Fold: a', ' continued'], body: b })],
  ['a NUL in a value', (h, b) => ({ head: [...h, 'X-Nul: a\0b'], body: b })],
  ['a DEL in a value', (h, b) => ({ head: [...h, 'X-Del: a\x7fb'], body: b })],
  ['whitespace before a colon', (h, b) => ({ head: [...h, 'X-Space : 1'], body: b })],
  ['a field without a colon', (h, b) => ({ head: [...h, 'X-NoColon'], body: b })],
  ['a bad field name', (h, b) => ({ head: [...h, 'X(Bad): 1'], body: b })],
  ['a bare LF in the head', (h, b) => `${h.join('\r\n').replace('\r\n', '\n')}\r\n\r\n${b}`],
  ['a bare CR in a value', (h, b) => ({ head: [...h, 'X-Cr: a\rb'], body: b })],
  ['a bad status line', (_h, b) => `HTTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`],
  ['HTTP/1.2', (h, b) => ({ head: [h[0]!.replace('HTTP/1.1', 'HTTP/1.2'), ...h.slice(1)], body: b })],
  ['a two-digit status', (h, b) => ({ head: ['HTTP/1.1 20 OK', ...h.slice(1)], body: b })],
  ['a bad chunk size', (h) => ({ head: [...h.filter((x) => !/^(content-length|transfer-encoding)/i.test(x)), 'Transfer-Encoding: chunked'], body: 'zz\r\nhello\r\n0\r\n\r\n' })],
  ['no CRLF after chunk data', (h) => ({ head: [...h.filter((x) => !/^(content-length|transfer-encoding)/i.test(x)), 'Transfer-Encoding: chunked'], body: '3\r\nabcd\r\n0\r\n\r\n' })],
  ['chunked twice', (h) => ({ head: [...h.filter((x) => !/^(content-length|transfer-encoding)/i.test(x)), 'Transfer-Encoding: chunked, chunked'], body: '0\r\n\r\n' })],
  ['a Content-Length longer than the body', (h, b) => ({ head: [...h.filter((x) => !/^(content-length|transfer-encoding)/i.test(x)), `Content-Length: ${b.length + 5}`], body: b })],
];

function makeCase(r: () => number, i: number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const status = pick(STATUSES);
  const body = status === 204 || status === 304 ? '' : 'x'.repeat(Math.floor(r() * 40)) + `#${i}`;
  const head = [`HTTP/1.1 ${status} Reason`, `X-Case: ${i}`];
  if (r() < 0.3) head.push(`X-Extra-${Math.floor(r() * 100)}: v${'a'.repeat(Math.floor(r() * 20))} \t`);
  if (r() < 0.2) head.push('Cache-Control: no-cache');
  let framing = pick(['length', 'length', 'chunked', 'chunked-ext', 'close'] as const);
  if (status === 204 || status === 304) framing = 'length';
  let encoded = body;
  if (framing === 'length') head.push(`Content-Length: ${body.length}`);
  else if (framing === 'chunked' || framing === 'chunked-ext') {
    head.push('Transfer-Encoding: chunked');
    let out = '';
    for (let at = 0; at < body.length; ) {
      const n = Math.min(body.length - at, 1 + Math.floor(r() * 15));
      out += `${n.toString(16)}${framing === 'chunked-ext' ? ';ext=1' : ''}\r\n${body.slice(at, at + n)}\r\n`;
      at += n;
    }
    encoded = `${out}0\r\n${r() < 0.3 ? 'X-Trailer: t\r\n' : ''}\r\n`;
  }
  let close = framing === 'close';
  let what = `${status} ${framing}`;
  let response: string;
  if (r() < 0.4) {
    const [name, mutate] = pick(MUTATIONS);
    const m = mutate(head, encoded);
    response = typeof m === 'string' ? m : `${m.head.join('\r\n')}\r\n\r\n${m.body}`;
    what += `, ${name}`;
    // A malformed response ends the connection from the upstream's side too.
    close = true;
  } else response = `${head.join('\r\n')}\r\n\r\n${encoded}`;
  return { response, close, what };
}

/** One request per line "GET /<engine>/<case>": answers each from `cases`, several per connection. */
async function rawUpstream(cases: Case[]): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const line = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(end + 4);
        const c = cases[Number(/^\w+ \/\w+\/(\d+)/.exec(line)?.[1] ?? -1)];
        if (c === undefined) return void socket.destroy();
        if (c.close) socket.end(c.response, 'latin1');
        else socket.write(c.response, 'latin1');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What the client got, without what differs by request (Date, the request id). */
function fetchOutcome(url: string, method: string): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method, agent: false }, (res) => {
      const fields: string[] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = res.rawHeaders[i]!.toLowerCase();
        if (name !== 'date' && name !== 'x-request-id' && name !== 'connection' && name !== 'keep-alive') fields.push(`${name}: ${res.rawHeaders[i + 1]!}`);
      }
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      // A reset is a reset, whether the head and some body came first or not: undici reports a
      // parse error a tick later (its socket's 'error'), when node:http has flushed the head
      // and what body it had; the native client reports it at once, and node:http then drops
      // what it had not yet written. The client sees a failed response in both.
      res.on('error', () => resolve('reset'));
      res.on('aborted', () => undefined);
      res.on('end', () => {
        // usher's own error page carries the request id: keep its reason only.
        const reason = /reason: (\w+)/.exec(body)?.[1];
        resolve(`${res.statusCode} ${fields.join(' | ')} => ${reason !== undefined && res.statusCode! >= 500 ? `reason ${reason}` : JSON.stringify(body)}${JSON.stringify(res.trailers) === '{}' ? '' : ` trailers ${JSON.stringify(res.trailers)}`}`);
      });
    });
    req.on('error', (err) => resolve(['ECONNRESET', 'ECONNABORTED'].includes((err as NodeJS.ErrnoException).code ?? '') || err.message === 'socket hang up' ? 'reset' : `error ${err.message}`));
    req.end();
  });
}

test('differential: generated responses through engine native and engine undici reach the client alike', async (t) => {
  const r = seeded(0x17);
  const cases = Array.from({ length: 300 }, (_, i) => makeCase(r, i));
  const up = await rawUpstream(cases);
  const server = `http://127.0.0.1:${up.port}`;
  // No retries, no ejection: every case is one try on one server.
  const common = { servers: [server], retry: { attempts: 0 }, outlier_detection: { enabled: false } };
  const u = await startUsher({
    upstreams: { n: { ...common, engine: 'native' }, u: { ...common, engine: 'undici' } },
    routes: [
      { match: { path: '/n/' }, upstream: 'n' },
      { match: { path: '/u/' }, upstream: 'u' },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const differences: string[] = [];
  const stricter: number[] = [];
  let malformed = 0;
  for (const [i, c] of cases.entries()) {
    if (c.what.includes(',')) malformed++;
    const method = i % 7 === 3 ? 'HEAD' : 'GET';
    const native = await fetchOutcome(`${u.url}/n/${i}`, method);
    const undici = await fetchOutcome(`${u.url}/u/${i}`, method);
    if (native === undici) continue;
    // The one deliberate difference: "Transfer-Encoding: chunked, chunked" (chunked applied
    // twice, RFC 9112 §6.1 "MUST NOT") is a framing error to the native client, as usher's
    // listener refuses it in a request (malformed.test.ts); undici's llhttp takes it as chunked.
    if (c.what.endsWith('chunked twice') && native.startsWith('502 ') && (method === 'HEAD' || native.endsWith('reason upstream_bad_response'))) {
      stricter.push(i);
      continue;
    }
    differences.push(`case ${i} (${method} ${c.what}):\n  native: ${native}\n  undici: ${undici}`);
  }
  assert.ok(malformed > 60 && malformed < cases.length - 60, `a mix of valid and malformed cases (${malformed} malformed)`);
  assert.deepEqual(differences, [], `${differences.length} of ${cases.length} cases differ:\n${differences.join('\n')}`);
  assert.ok(stricter.length > 0, 'the generator made "chunked, chunked" cases (the known difference is checked, not assumed)');
});
