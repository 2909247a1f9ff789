// The downstream request parser (src/server/h1/parser.ts) against what serves requests today:
// node:http (llhttp) followed by the checks usher's handler makes on what node accepted
// (src/server/handler.ts: HTTP major version, request-line length, header count, transfer
// codings). 3,000 generated requests (seeded: the same every run), valid and malformed, some
// pipelined, each sent on its own connection to a real node:http server and fed to the parser
// (whole, and the first 300 also split at a random byte). Accept or refuse must agree, and where
// both accept, what was parsed: method, target, raw headers, body, trailers, in order, for every
// request on the connection. Where they differ by design (usher is stricter or passes more),
// the difference must be one of BY_DESIGN, each with its reason; any other fails the test.
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { DEFAULT_REQUEST_LIMITS, RequestParser, type RequestHead, type RequestSink } from '../../src/server/h1/parser.js';
import { seeded } from '../helpers/rng.js';

const CASES = 3000;
const SEED = 0x17d1ff;

/** One request as parsed, or a refusal; a connection's outcome is the list of them. */
type Item = { method: string; url: string; headers: string[]; body: string; trailers: string[]; upgrade: boolean; keepAlive: boolean } | { refused: string };

// ---- the generator -------------------------------------------------------------------------

type Rng = () => number;
const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const chance = (r: Rng, p: number): boolean => r() < p;

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'PURGE', 'REPORT'];
const CUSTOM_METHODS = ['FOO', 'BREW', 'X-SYNC', 'get', 'QUERY2'];
const PATHS = ['/', '/index.html', '/a/b/c', '/search?q=1&r=%20x', '/api/v1/users/42', '/~user/file.txt', '/a;b=c', "/it's(ok)!", '/%7e/%2F'];
const NAMES = ['Accept', 'accept-encoding', 'User-Agent', 'X-Request-Id', 'Cookie', 'X-Forwarded-For', 'Cache-Control', 'If-None-Match', 'x-a', 'X_Under', "X-!#$%&'*+.^`|~"];
const VALUE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~\t';

function value(r: Rng): string {
  let v = '';
  const n = int(r, 0, 40);
  for (let i = 0; i < n; i++) v += chance(r, 0.02) ? String.fromCharCode(int(r, 0x80, 0xff)) : pick(r, [...VALUE_CHARS]);
  return v;
}

function randomBytes(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(r, 0, 255));
  return s;
}

interface Msg {
  line: [string, string, string];
  fields: [string, string][];
  body: string;
  /** The chunked body as it goes on the wire (when chunked). */
  chunks?: { sizes: string[]; data: string[]; trailer: [string, string][] };
}

function validMessage(r: Rng): Msg {
  const method = chance(r, 0.03) ? pick(r, CUSTOM_METHODS) : pick(r, METHODS);
  let target = pick(r, PATHS);
  if (chance(r, 0.05)) target = `http://example.com${target}`;
  if (method === 'OPTIONS' && chance(r, 0.3)) target = '*';
  const version = chance(r, 0.1) ? 'HTTP/1.0' : 'HTTP/1.1';
  const fields: [string, string][] = [['Host', chance(r, 0.5) ? 'example.com' : 'a.test:8080']];
  const n = int(r, 0, 12);
  for (let i = 0; i < n; i++) {
    const ows = (): string => pick(r, ['', '', ' ', '  ', '\t']);
    fields.push([pick(r, NAMES), `${ows()}${value(r)}${ows()}`]);
  }
  const m: Msg = { line: [method, target, version], fields, body: '' };
  const kind = method === 'GET' || method === 'HEAD' ? (chance(r, 0.9) ? 0 : 1) : int(r, 0, 2);
  if (kind === 1) {
    m.body = randomBytes(r, int(r, 0, 300));
    fields.push([pick(r, ['Content-Length', 'content-length']), String(m.body.length)]);
  } else if (kind === 2 && version === 'HTTP/1.1') {
    const data: string[] = [];
    const sizes: string[] = [];
    for (let i = int(r, 1, 4); i > 0; i--) {
      const d = randomBytes(r, int(r, 1, 100));
      data.push(d);
      let size = d.length.toString(16);
      if (chance(r, 0.2)) size = size.toUpperCase();
      if (chance(r, 0.1)) size = `00${size}`;
      if (chance(r, 0.1)) size += pick(r, [';a=b', ';name', ';q="x y"']);
      sizes.push(size);
    }
    m.body = data.join('');
    const trailer: [string, string][] = chance(r, 0.2) ? [['X-Sum', value(r).trim()]] : [];
    m.chunks = { sizes, data, trailer };
    fields.push([pick(r, ['Transfer-Encoding', 'transfer-encoding']), pick(r, ['chunked', 'chunked', 'Chunked'])]);
  }
  return m;
}

function wire(m: Msg): string {
  let s = `${m.line.join(' ')}\r\n`;
  for (const [k, v] of m.fields) s += `${k}:${v.startsWith(' ') || v.startsWith('\t') ? '' : ' '}${v}\r\n`;
  s += '\r\n';
  if (m.chunks === undefined) return s + m.body;
  m.chunks.sizes.forEach((size, i) => (s += `${size}\r\n${m.chunks!.data[i]}\r\n`));
  s += '0\r\n';
  for (const [k, v] of m.chunks.trailer) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

const BAD_BYTES = ['\0', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f', '\r', '\n', ' ', '(', '@', '"', ',', '\x80', '\xff', '\t'];

/** One mutation that may or may not make the message malformed (the two parsers judge). */
function mutate(r: Rng, m: Msg): string {
  const which = int(r, 0, 27);
  const f = m.fields;
  const at = int(r, 1, f.length);
  switch (which) {
    case 0:
      f.splice(at, 0, ['Content-Length', String(m.body.length)]);
      f.push(['Transfer-Encoding', 'chunked']);
      return wire(m);
    case 1:
      f.splice(at, 0, ['Content-Length', pick(r, [String(m.body.length), '5', '0'])], ['Content-Length', pick(r, [String(m.body.length), '6'])]);
      return wire(m);
    case 2:
      f.push(['Content-Length', pick(r, ['5, 5', '+5', '-1', '5x', '0x5', '', ' ', '99999999999999999999', '1 2', '05'])]);
      return wire(m);
    case 3:
      f.push(['Transfer-Encoding', pick(r, ['gzip', 'chunked, gzip', 'gzip, chunked', 'chunked, chunked', 'xchunked', 'chunked ', ' chunked', 'identity', '', 'chunked;q=1', 'CHUNKED'])]);
      return wire(m);
    case 4:
      f.push(['Transfer-Encoding', 'gzip'], ['Transfer-Encoding', 'chunked']);
      return wire(m);
    case 5:
      m.line[2] = 'HTTP/1.0';
      f.push(['Transfer-Encoding', 'chunked']);
      m.chunks = { sizes: ['3'], data: ['abc'], trailer: [] };
      return wire(m);
    case 6: {
      // obs-fold
      const i = int(r, 0, f.length - 1);
      f[i] = [f[i]![0], `${f[i]![1]}\r\n${pick(r, [' ', '\t', '  '])}folded`];
      return wire(m);
    }
    case 7:
    case 8: {
      // A CRLF of the head replaced by LF, CR, or CR CR LF.
      const s = wire(m);
      const head = s.indexOf('\r\n\r\n');
      const lines: number[] = [];
      for (let i = s.indexOf('\r\n'); i >= 0 && i <= head + 2; i = s.indexOf('\r\n', i + 2)) lines.push(i);
      const i = pick(r, lines);
      return s.slice(0, i) + pick(r, ['\n', '\r', '\r\r\n', '\n\r']) + s.slice(i + 2);
    }
    case 9:
    case 10: {
      // A byte inserted into a field value or name.
      const i = int(r, 0, f.length - 1);
      const [k, v] = f[i]!;
      const b = pick(r, BAD_BYTES);
      if (which === 9) {
        const j = int(r, 0, v.length);
        f[i] = [k, v.slice(0, j) + b + v.slice(j)];
      } else {
        const j = int(r, 0, k.length);
        f[i] = [k.slice(0, j) + b + k.slice(j), v];
      }
      return wire(m);
    }
    case 11: {
      const b = pick(r, BAD_BYTES);
      const t = m.line[1];
      const j = int(r, 0, t.length);
      m.line[1] = t.slice(0, j) + b + t.slice(j);
      return wire(m);
    }
    case 12: {
      const b = pick(r, BAD_BYTES);
      const t = m.line[0];
      const j = int(r, 0, t.length);
      m.line[0] = t.slice(0, j) + b + t.slice(j);
      return wire(m);
    }
    case 13:
      m.line[2] = pick(r, ['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', 'HTTP/1.', 'HTTP/3.0', 'HTTP/1.10', 'HTTPS/1.1']);
      return wire(m);
    case 14: {
      const s = wire(m);
      return pick(r, [s.replace(' ', '  '), s.replace(' HTTP/', 'HTTP/'), s.replace(/^[^ ]+ [^ ]+ /, (x) => x.replace(' ', '\t')), s.replace(/ HTTP\/1\.[01]\r\n/, '\r\n')]);
    }
    case 15:
      f.splice(at, 0, [pick(r, ['X-A ', 'X-A\t', '', ' X-A']), '1']);
      return wire(m);
    case 16: {
      const s = wire(m);
      const head = s.indexOf('\r\n') + 2;
      return `${s.slice(0, head)}${pick(r, ['NoColon', 'X-A;1', ':x'])}\r\n${s.slice(head)}`;
    }
    case 17:
    case 18: {
      // The chunked body: sizes and what follows them.
      if (m.line[2] !== 'HTTP/1.1') m.line[2] = 'HTTP/1.1';
      if (m.chunks === undefined) {
        m.chunks = { sizes: ['5'], data: ['hello'], trailer: [] };
        m.body = 'hello';
        f.push(['Transfer-Encoding', 'chunked']);
      }
      const i = int(r, 0, m.chunks.sizes.length - 1);
      const size = parseInt(m.chunks.sizes[i]!, 16).toString(16);
      m.chunks.sizes[i] = pick(r, [
        `0x${size}`, `-${size}`, `+${size}`, `${size}g`, 'fffffffffffffffff', '10000000000000', `${size} `, `${size} ;a`, `${size}\t;a`, `${size}; a`,
        `${size};a=\0`, `${size};a=b\n`, `${size};${'x'.repeat(5000)}`, `${size}\n`, ` ${size}`, '', `${size};a="b;c"`,
      ]);
      return wire(m);
    }
    case 19: {
      // Chunk data longer or shorter than its size.
      if (m.chunks === undefined || m.line[2] !== 'HTTP/1.1') return wire(m);
      const i = int(r, 0, m.chunks.data.length - 1);
      m.chunks.data[i] = chance(r, 0.5) ? `${m.chunks.data[i]}!` : m.chunks.data[i]!.slice(1);
      return wire(m);
    }
    case 20:
      if (m.chunks !== undefined) m.chunks.trailer.push([pick(r, ['X-T', 'X T', 'X-T\0']), pick(r, ['ok', 'a\0b', 'a\rb', ''])]);
      return wire(m);
    case 21: {
      // A message cut short: both must refuse (node at the close, the parser as a cut request).
      const s = wire(m);
      return s.slice(0, int(r, 1, s.length - 1));
    }
    case 22:
      return `${pick(r, ['\r\n', '\r\n\r\n', '\n', '\r'])}${wire(m)}`;
    case 23:
      // A head past node's 16 KiB (maxHeaderSize), or a request line past limits.request_line.
      if (chance(r, 0.5)) f.push(['X-Big', 'a'.repeat(20_000)]);
      else m.line[1] = `/${'b'.repeat(9000)}`;
      return wire(m);
    case 24:
      f.push(['Connection', pick(r, ['close', 'keep-alive', 'Keep-Alive, close', 'upgrade'])]);
      return wire(m);
    case 25:
      // An upgrade: the parser stops at its head, node emits 'upgrade'.
      if (m.body === '') f.push(['Connection', 'Upgrade'], ['Upgrade', 'websocket']);
      return `${wire(m)}\x81\x00`;
    case 26:
      f.push([pick(r, ['Expect', 'Host', 'host']), pick(r, ['100-continue', 'b.test'])]);
      return wire(m);
    default:
      return wire(m);
  }
}

interface Case {
  data: string;
  label: string;
}

function generate(): Case[] {
  const r = seeded(SEED);
  const cases: Case[] = [];
  for (let n = 0; n < CASES; n++) {
    const count = chance(r, 0.1) ? int(r, 2, 3) : 1;
    let data = '';
    let label = '';
    for (let i = 0; i < count; i++) {
      const m = validMessage(r);
      if (chance(r, 0.55)) {
        data += mutate(r, m);
        label += 'm';
      } else {
        data += wire(m);
        label += 'v';
      }
    }
    cases.push({ data, label });
  }
  return cases;
}

// ---- node:http + the handler's checks ------------------------------------------------------

/** What src/server/handler.ts refuses of a request node accepted (its checks before routing). */
function handlerRefusal(req: IncomingMessage): string | undefined {
  const url = req.url ?? '';
  if (req.httpVersionMajor !== 1) return 'http_version_not_supported';
  if (url.length + req.method!.length + 10 > DEFAULT_REQUEST_LIMITS.requestLine) return 'request_line_too_long';
  if (req.rawHeaders.length > DEFAULT_REQUEST_LIMITS.headerCount * 2) return 'too_many_headers';
  // absoluteTarget(): origin-form, "*" for OPTIONS, or http(s)://authority without userinfo.
  if (url.charCodeAt(0) !== 47 && !(url === '*' && req.method === 'OPTIONS') && !/^https?:\/\/[^/?@]+(?:[/?]|$)/i.test(url)) return 'bad_request';
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    const codings = te.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '');
    if (codings.length === 0 || codings.indexOf('chunked') !== codings.length - 1 || req.httpVersionMinor === 0) return 'ambiguous_framing';
    if (codings.length > 1) return 'unsupported_transfer_encoding';
  }
  return undefined;
}

async function nodeServer(): Promise<{ port: number; outcome(localPort: number): Item[]; close(): Promise<void> }> {
  const byPort = new Map<number, Item[]>();
  const items = (sock: net.Socket): Item[] => {
    const port = sock.remotePort!;
    let list = byPort.get(port);
    if (list === undefined) byPort.set(port, (list = []));
    return list;
  };
  const server = http.createServer({ requireHostHeader: false, maxHeaderSize: DEFAULT_REQUEST_LIMITS.headerSize }, (req, res) => {
    const list = items(req.socket);
    const slot = list.length;
    list.push({ refused: 'pending' });
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      const refused = handlerRefusal(req);
      const keepAlive = (res as unknown as { shouldKeepAlive: boolean }).shouldKeepAlive;
      list[slot] = refused !== undefined ? { refused } : { method: req.method!, url: req.url!, headers: req.rawHeaders, body: Buffer.concat(body).toString('latin1'), trailers: req.rawTrailers, upgrade: false, keepAlive };
      res.end();
    });
  });
  // A complete request on a half-closed connection is still answered (the client ends its side).
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('clientError', (err: NodeJS.ErrnoException, sock: net.Socket) => {
    items(sock).push({ refused: err.code ?? 'error' });
    sock.destroy();
  });
  server.on('upgrade', (req: IncomingMessage, sock: net.Socket) => {
    items(sock).push({ method: req.method!, url: req.url!, headers: req.rawHeaders, body: '', trailers: [], upgrade: true, keepAlive: false });
    sock.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    outcome: (localPort) => {
      const list = byPort.get(localPort) ?? [];
      byPort.delete(localPort);
      return list;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function viaNode(port: number, outcome: (localPort: number) => Item[], data: string): Promise<Item[]> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.from(data, 'latin1')));
    let local = 0;
    s.on('connect', () => (local = s.localPort!));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      // The server's last event for this connection came before it closed the connection.
      setImmediate(() => resolve(outcome(local)));
    });
  });
}

// ---- the parser ----------------------------------------------------------------------------

/** The parser's error message for the last refusal viaParser saw. */
let lastError = '';

function viaParser(data: string, cut = -1): Item[] {
  lastError = '';
  const out: Item[] = [];
  let cur: { method: string; url: string; headers: string[]; body: string[]; upgrade: boolean; keepAlive: boolean } | null = null;
  const sink: RequestSink = {
    onRequest: (h: RequestHead) => ((cur = { method: h.method, url: h.target, headers: h.headers, body: [], upgrade: h.upgrade, keepAlive: h.keepAlive && !h.upgrade }), true),
    onBody: (c) => (cur!.body.push(c.toString('latin1')), true),
    onComplete: (trailers) => {
      const c = cur!;
      out.push({ method: c.method, url: c.url, headers: c.headers, body: c.body.join(''), trailers: c.upgrade ? [] : trailers, upgrade: c.upgrade, keepAlive: c.keepAlive });
      cur = null;
      return true;
    },
  };
  const p = new RequestParser(sink);
  const buf = Buffer.from(data, 'latin1');
  const pieces = cut > 0 ? [buf.subarray(0, cut), buf.subarray(cut)] : [buf];
  for (const piece of pieces) {
    const at = p.execute(piece, 0);
    if (at < 0) {
      lastError = p.error;
      out.push({ refused: p.reason });
      return out;
    }
    if (p.upgraded) return out;
  }
  if (!p.finish()) out.push({ refused: 'cut' });
  return out;
}

/**
 * A connection's outcome as compared: what follows a refusal is cut (the listener closes the
 * connection after a refused request; node would parse on), and a refusal is a refusal whatever
 * its code (the codes are tallied apart).
 */
function normal(items: Item[]): Item[] {
  const out: Item[] = [];
  for (const x of items) {
    if ('refused' in x) return [...out, { refused: '' }];
    out.push(x);
    // The connection ends with this request's response: what follows is never read (node
    // refuses it as HPE_CLOSED_CONNECTION, the parser would go on).
    if (!x.keepAlive) break;
  }
  return out;
}

// ---- the differences by design -------------------------------------------------------------

const KNOWN = new Set(http.METHODS);

/**
 * Why the parser's outcome for `data` differs from node's, if that is by design; undefined if
 * not (a bug in one of them, or a difference nobody decided on).
 */
function byDesign(data: string, node: Item[], ours: Item[], error: string): string | undefined {
  const nn = normal(node);
  const oo = normal(ours);
  const i = nn.findIndex((n, k) => JSON.stringify(n) !== JSON.stringify(oo[k]));
  const n = i < 0 ? undefined : nn[i];
  const o = i < 0 ? oo[nn.length] : oo[i];
  if (o === undefined) return undefined;
  // node's last refusal (the first may be the placeholder of a request whose body failed).
  const nodeCode = node.filter((x) => 'refused' in x).pop() as { refused: string } | undefined;
  const nodeAccepted = n !== undefined && !('refused' in n);
  const weRefused = 'refused' in o;
  const oddExpect = (x: Item): boolean => !('refused' in x) && x.headers.some((h, k) => k % 2 === 0 && h.toLowerCase() === 'expect' && x.headers[k + 1]!.toLowerCase() !== '100-continue');
  if (oo.some(oddExpect) && JSON.stringify(nn) === JSON.stringify(normal(ours.filter((x) => !oddExpect(x))))) {
    return 'Expect other than 100-continue: node answers 417 itself, with no request event; the parser reports the field (the listener decides, RFC 9110 §10.1.1)';
  }
  if (n === undefined) return undefined;
  if (nodeAccepted && !weRefused && JSON.stringify({ ...n, keepAlive: false }) === JSON.stringify(o) && o.headers.some((h, k) => k % 2 === 0 && h.toLowerCase() === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(o.headers[k + 1]!))) {
    return 'Connection with both keep-alive and close (HTTP/1.0): close wins (RFC 9112 §9.3); llhttp keeps the connection';
  }
  if (!nodeAccepted && !weRefused) {
    if (nodeCode?.refused === 'HPE_INVALID_METHOD' && !KNOWN.has(o.method)) {
      return 'a method llhttp does not know: a method is any token (RFC 9110 §9.1), the handler and routes decide';
    }
    if ((nodeCode?.refused === 'HPE_STRICT' || nodeCode?.refused === 'HPE_INVALID_CHUNK_SIZE') && /\r\n[0-9a-fA-F]+[ \t]*;[ \t]|\r\n[0-9a-fA-F]+[ \t]+;/.test(data)) {
      return 'whitespace around ";" in a chunk extension: BWS in RFC 9112 §7.1.1\'s grammar (llhttp refuses it)';
    }
    return undefined;
  }
  if (nodeAccepted && weRefused) {
    if (error === 'an empty element in Transfer-Encoding') {
      return 'an empty element in Transfer-Encoding ("chunked, " or an empty second line): refused on the field that frames the body (llhttp of Node 20 skips it, that of Node 24 refuses it)';
    }
    if (error === 'chunk extension too long') return 'a chunk-size line past 4 KiB (MAX_CHUNK_LINE): bounded, llhttp has no bound';
    if (error === 'more than one space after the method') {
      return 'one SP between the parts of the request line (RFC 9112 §3): llhttp takes several';
    }
    if (/^bare (CR|LF) before the request line$/.test(error)) {
      return 'a bare CR or LF before the request line: only empty lines (CRLF) are skipped (RFC 9112 §2.2), llhttp skips either';
    }
  }
  return undefined;
}

test('the request parser against node:http + the handler on 3,000 generated requests', { timeout: 170_000 }, async () => {
  const cases = generate();
  const server = await nodeServer();
  const nodeOut: Item[][] = new Array(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const k = next++;
      nodeOut[k] = await viaNode(server.port, server.outcome, cases[k]!.data);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await server.close();

  const agree = { accepted: 0, refused: 0 };
  /** For requests both refuse: node's error code (or the handler's reason) → the parser's. */
  const codes = new Map<string, number>();
  const designed = new Map<string, { count: number; example: string }>();
  const failures: string[] = [];
  const r = seeded(SEED + 1);
  cases.forEach((c, k) => {
    const node = nodeOut[k]!;
    if (k < 300) {
      // The same outcome whatever the split.
      const cut = int(r, 1, Math.max(1, c.data.length - 1));
      assert.deepEqual(viaParser(c.data, cut), viaParser(c.data), `case ${k}: split at ${cut}`);
    }
    const ours = viaParser(c.data);
    const nodeRefuses = node.some((x) => 'refused' in x);
    const ourCode = ours.find((x) => 'refused' in x);
    const nodeCode = node.find((x) => 'refused' in x);
    if (nodeRefuses && ourCode !== undefined && JSON.stringify(normal(node)) === JSON.stringify(normal(ours))) {
      const pair = `${(nodeCode as { refused: string }).refused} → ${(ourCode as { refused: string }).refused}`;
      codes.set(pair, (codes.get(pair) ?? 0) + 1);
    }
    if (JSON.stringify(normal(node)) === JSON.stringify(normal(ours))) {
      agree[nodeRefuses ? 'refused' : 'accepted']++;
      return;
    }
    const why = byDesign(c.data, node, ours, lastError);
    if (why === undefined) {
      const nn = normal(node);
      const oo = normal(ours);
      let d = 0;
      while (d < nn.length && JSON.stringify(nn[d]) === JSON.stringify(oo[d])) d++;
      const show = (x: Item | undefined): string => JSON.stringify(x ?? null).slice(0, 600);
      if (failures.length < 20) failures.push(`case ${k} (${c.label}) ${JSON.stringify(c.data.slice(0, 300))}\n  item ${d} of ${nn.length}/${oo.length}\n  node:   ${show(nn[d])} ${JSON.stringify(node.find((x) => 'refused' in x) ?? '')}\n  parser: ${show(oo[d])} ${lastError}`);
      else failures.push('');
      return;
    }
    const d = designed.get(why) ?? { count: 0, example: JSON.stringify(c.data.slice(0, 120)) };
    d.count++;
    designed.set(why, d);
  });
  const lines = [`agree: ${agree.accepted} accepted alike, ${agree.refused} refused alike`];
  lines.push(`refusal codes, node → parser: ${[...codes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [why, d] of designed) lines.push(`by design (${d.count}): ${why} — e.g. ${d.example}`);
  console.log(lines.join('\n'));
  assert.equal(failures.length, 0, `${failures.length} unexplained differences:\n${failures.filter((f) => f !== '').join('\n')}`);
  // The generator must exercise both sides: a test where everything is refused proves little.
  assert.ok(agree.accepted > 1000 && agree.refused > 500, JSON.stringify(agree));
});
