// One HTTP/1.1 client connection of tools/open-loop.js: a raw net/tls socket, one request at a
// time (no pipelining), the request bytes built once, and just enough of a response parser for
// the bench's origins and proxies: status line, Content-Length, chunked (RFC 9112 §7.1) or
// read-until-close bodies (§6.3), and `Connection: close` (§9.6). Body bytes are counted, not
// kept, so a 100 KiB answer costs the client no copies.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';

const CRLF2 = Buffer.from('\r\n\r\n');

export class HttpSlot {
  /**
   * @param {string} url
   * @param {{ method: string, bodyBytes: number, body?: Buffer, contentType?: string, headers?: string[], close: boolean, timeoutMs: number,
   *   done: (slot: HttpSlot, intendedAt: number) => void, failed: (slot: HttpSlot, reason: string) => void }} o
   */
  constructor(url, o) {
    const u = new URL(url);
    this.connectOptions = {
      host: u.hostname,
      port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
      noDelay: true,
      rejectUnauthorized: false, // the bench's own self-signed certificate
      servername: net.isIP(u.hostname) ? undefined : u.hostname,
    };
    this.secure = u.protocol === 'https:';
    const body = o.body ?? (o.bodyBytes ? Buffer.alloc(o.bodyBytes, 'x') : Buffer.alloc(0));
    const extra = o.headers ?? [];
    const hasHost = extra.some((h) => /^host\s*:/i.test(h));
    const head =
      `${o.method} ${u.pathname}${u.search} HTTP/1.1\r\n` +
      (hasHost ? '' : `Host: ${u.host}\r\n`) +
      extra.map((h) => `${h}\r\n`).join('') +
      (o.close ? 'Connection: close\r\n' : '') +
      (o.acceptEncoding ? `Accept-Encoding: ${o.acceptEncoding}\r\n` : '') +
      (o.authorization ? `Authorization: ${o.authorization}\r\n` : '') +
      (body.length ? `Content-Type: ${o.contentType ?? 'application/octet-stream'}\r\nContent-Length: ${body.length}\r\n` : '') +
      '\r\n';
    this.request = Buffer.concat([Buffer.from(head, 'latin1'), body]);
    Object.assign(this, { close: o.close, timeoutMs: o.timeoutMs, onDone: o.done, onFailed: o.failed });
    this.socket = null;
    this.busy = false;
    this.timer = null;
  }

  /** Connect ahead of the schedule (keep-alive); resolves when the connection is up. */
  open() {
    if (this.close) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const socket = this.connect();
      socket.once(this.secure ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
  }

  connect() {
    const socket = this.secure ? tls.connect(this.connectOptions) : net.connect(this.connectOptions);
    this.socket = socket;
    this.resetParser();
    socket.on('data', (chunk) => this.onData(socket, chunk));
    socket.on('end', () => this.onEnd(socket));
    socket.on('error', (err) => this.lost(socket, err.code ?? err.message));
    socket.on('close', () => this.lost(socket, 'connection closed'));
    return socket;
  }

  send(intendedAt) {
    this.intendedAt = intendedAt;
    this.busy = true;
    this.resetParser();
    this.timer = setTimeout(() => this.fail(`no answer within ${this.timeoutMs} ms`), this.timeoutMs);
    const socket = this.socket && !this.socket.destroyed ? this.socket : this.connect();
    socket.write(this.request);
  }

  resetParser() {
    this.headBuf = null; // bytes of a head not yet complete
    this.inBody = false;
    this.remaining = 0; // Content-Length body bytes, or bytes left in the current chunk (+2 for its CRLF)
    this.chunked = false;
    this.untilClose = false;
    this.closeAfter = false;
    this.lineBuf = ''; // partial chunk-size line
    this.lastChunk = false;
    this.status = 0;
  }

  onData(socket, chunk) {
    if (socket !== this.socket) return;
    if (!this.busy) return this.fail('data with no request outstanding');
    let buf = chunk;
    if (!this.inBody) {
      buf = this.headBuf ? Buffer.concat([this.headBuf, chunk]) : chunk;
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        this.headBuf = buf;
        return;
      }
      this.headBuf = null;
      if (!this.parseHead(buf.toString('latin1', 0, end))) return;
      buf = buf.subarray(end + 4);
      this.inBody = true;
      if (!this.chunked && !this.untilClose && this.remaining === 0) return this.complete(buf.length);
    }
    if (this.untilClose) return;
    if (!this.chunked) {
      this.remaining -= buf.length;
      if (this.remaining <= 0) this.complete(-this.remaining);
      return;
    }
    this.chunks(buf);
  }

  /** @returns {boolean} false when the head is unusable (the request failed). */
  parseHead(head) {
    const lines = head.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!status) {
      this.fail(`bad status line "${lines[0].slice(0, 40)}"`);
      return false;
    }
    this.status = Number(status[1]);
    let length = null;
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':');
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') this.chunked = value.split(',').pop().trim() === 'chunked';
      else if (name === 'connection') this.closeAfter = value.split(',').some((t) => t.trim() === 'close');
    }
    // 1xx (none expected: no Expect is sent), 204 and 304 have no body whatever the head says (RFC 9112 §6.3).
    if (this.status < 200 || this.status === 204 || this.status === 304) this.chunked = false;
    else if (this.chunked) this.remaining = 0;
    else if (length !== null) this.remaining = length;
    else this.untilClose = true;
    return true;
  }

  /** Walk chunk framing: "size\r\n" data "\r\n" …, "0\r\n\r\n" (no trailers from our origins). */
  chunks(buf) {
    let i = 0;
    while (i < buf.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, buf.length - i);
        this.remaining -= take;
        i += take;
        continue;
      }
      const nl = buf.indexOf(10, i);
      if (nl < 0) {
        this.lineBuf += buf.toString('latin1', i);
        return;
      }
      const line = (this.lineBuf + buf.toString('latin1', i, nl)).trim();
      this.lineBuf = '';
      i = nl + 1;
      if (line === '') {
        if (this.lastChunk) return this.complete(buf.length - i);
        continue; // the CRLF after a chunk's data
      }
      if (this.lastChunk) continue; // a trailer field
      const size = parseInt(line, 16);
      if (Number.isNaN(size)) return this.fail(`bad chunk size "${line.slice(0, 20)}"`);
      if (size === 0) this.lastChunk = true;
      else this.remaining = size;
    }
  }

  complete(extraBytes) {
    if (extraBytes > 0) return this.fail('more bytes than the response framing says');
    clearTimeout(this.timer);
    this.busy = false;
    this.lastChunk = false;
    const ok = this.status >= 200 && this.status < 400;
    if (this.close || this.closeAfter) this.dropSocket();
    if (ok) this.onDone(this, this.intendedAt);
    else this.onFailed(this, `status ${this.status}`);
  }

  onEnd(socket) {
    if (socket !== this.socket) return;
    if (this.busy && this.inBody && this.untilClose) return this.complete(0);
    this.lost(socket, 'connection closed');
  }

  lost(socket, reason) {
    if (socket !== this.socket) return;
    this.dropSocket();
    if (this.busy) this.fail(reason);
  }

  fail(reason) {
    clearTimeout(this.timer);
    this.dropSocket();
    if (!this.busy) return;
    this.busy = false;
    this.lastChunk = false;
    this.onFailed(this, reason);
  }

  dropSocket() {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }

  destroy() {
    clearTimeout(this.timer);
    this.dropSocket();
  }
}
