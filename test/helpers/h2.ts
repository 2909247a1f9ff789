// HTTP/2 test clients: node's http2 client for ordinary requests, and a raw frame writer for the
// floods node's client would refuse to send (RFC 9113 §4.1 frames, RFC 7541 HPACK literals).
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tcpConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export const CERT_FILE = fileURLToPath(new URL('../../../test/fixtures/h2-tls/cert.pem', import.meta.url));
export const KEY_FILE = fileURLToPath(new URL('../../../test/fixtures/h2-tls/key.pem', import.meta.url));

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
}

/** Opens an HTTP/2 session (h2c prior knowledge for http:, ALPN h2 for https:, any certificate). */
export function h2session(url: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(url, { rejectUnauthorized: false });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One request on `session`; resolves with status, headers, body and trailers. */
export function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
    let status = 0;
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: head, body: Buffer.concat(chunks), trailers }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

// ---- raw frames ------------------------------------------------------------------------------

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4, ACK: 0x1 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** RFC 7541 §5.1 integer with an N-bit prefix; `first` holds the pattern bits above the prefix. */
function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

/** Literal header field without indexing, new name (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), hpackString(name), hpackString(value)]);
}

/** Literal with incremental indexing, new name (RFC 7541 §6.2.1): the field enters the dynamic table. */
export function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** Indexed field (RFC 7541 §6.1); dynamic entries start at 62. */
export function indexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

export function requestBlock(path = '/', authority = 'flood.test'): Buffer {
  return Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', authority)]);
}

/** A raw TCP connection that has sent the preface and an empty SETTINGS frame. */
export function rawH2(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({ socket, received: () => Buffer.concat(chunks), closed: () => closed });
    });
    socket.once('error', reject);
  });
}

/** Frame types (and GOAWAY error codes) in what a server sent. */
export function parseFrames(data: Buffer): { type: number; flags: number; streamId: number; errorCode?: number }[] {
  const out: { type: number; flags: number; streamId: number; errorCode?: number }[] = [];
  let i = 0;
  while (i + 9 <= data.length) {
    const len = data.readUIntBE(i, 3);
    const type = data[i + 3]!;
    const f = { type, flags: data[i + 4]!, streamId: data.readUInt32BE(i + 5) & 0x7fffffff } as { type: number; flags: number; streamId: number; errorCode?: number };
    if (type === FRAME.GOAWAY && i + 9 + 8 <= data.length) f.errorCode = data.readUInt32BE(i + 9 + 4);
    if (type === FRAME.RST_STREAM && i + 9 + 4 <= data.length) f.errorCode = data.readUInt32BE(i + 9);
    out.push(f);
    i += 9 + len;
  }
  return out;
}
