// A strict HTTP/1.1 response parser (RFC 9112) for the native upstream client: incremental over
// the socket's chunks, one head parsed in one pass over its bytes into a flat name/value array
// of latin1 strings, bodies handed on as views of the chunk that carried them (no copy).
//
// Strict where a lenient reading would let one upstream response be taken for two or a body be
// mis-framed (response splitting, RFC 9112 §11.2): a bare LF, a CR not followed by LF, a NUL or
// other control character in a field, whitespace before a field's colon (§5.1), obs-fold
// (§5.2), a Content-Length that is not digits or that appears twice, Content-Length together
// with Transfer-Encoding (§6.3: "ought to be handled as an error"), chunked applied twice, a bad
// chunk size or a missing CRLF after chunk data. Every one is an error; the connection is then
// never reused. Body length per §6.3: no body after HEAD, 1xx, 204 and 304; chunked when it is
// the final transfer coding; Content-Length; otherwise (or another final coding) the body runs
// to the close of the connection. Interim 1xx (RFC 9110 §15.2): 100 is dropped here (usher
// answers Expect: 100-continue itself), the others go to the sink, and parsing goes on.

declare global {
  interface Buffer {
    /** node's own Buffer#toString('latin1', start, end) without the argument checks (lib/buffer.js). */
    latin1Slice(start: number, end: number): string;
  }
}

/** Where the parser's results go (the connection; no closure per response). */
export interface ResponseSink {
  /** An interim 1xx other than 100 and 101. */
  onInterim(status: number, headers: string[]): void;
  /** The final head; false pauses: execute() returns at once, before any body byte. */
  onHead(status: number, headers: string[]): boolean;
  /** A piece of the body (a view of the chunk being parsed); false pauses after it. */
  onBody(chunk: Buffer): boolean;
  /** The response is complete; `trailers` is the trailer section's fields (usually empty). */
  onComplete(trailers: string[]): void;
}

/** Largest response head (and trailer section): what undici was given (maxHeaderSize). */
export const MAX_HEAD = 64 * 1024;
/** Longest chunk-size line (size and extensions); llhttp has none, a bound keeps memory flat. */
const MAX_CHUNK_LINE = 4096;

const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_EXT = 3;
const S_CHUNK_SIZE_LF = 4;
const S_CHUNK_DATA = 5;
const S_CHUNK_DATA_CR = 6;
const S_CHUNK_DATA_LF = 7;
const S_TRAILERS = 8;
const S_EOF = 9;
const S_DONE = 10;
const S_UPGRADED = 11;
const S_ERROR = 12;
/** Stopped by the connection (a destroyed socket): nothing more is parsed or reported. */
const S_STOPPED = 13;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** tchar (RFC 9110 §5.6.2). */
const TOKEN = new Uint8Array(256);
/** field-vchar, SP and HTAB (RFC 9110 §5.5): VCHAR and obs-text; no CTL, no DEL. */
const VALUE = new Uint8Array(256);
/** Hex digit values + 1 (0: not a hex digit). */
const HEX = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch)) TOKEN[c] = 1;
  if (c === HTAB || (c >= 0x20 && c !== 0x7f)) VALUE[c] = 1;
  if (/[0-9a-fA-F]/.test(ch)) HEX[c] = parseInt(ch, 16) + 1;
}

export class ResponseParser {
  private state = S_HEAD;
  /** The response answers a HEAD request (no body whatever the fields say). */
  private head = false;
  /** The request asked for an upgrade: a 101 is expected, not an error. */
  private upgrade = false;
  /** Bytes of an incomplete head, trailer section or chunk-size line from earlier chunks. */
  private pending: Buffer | null = null;
  private remaining = 0;
  private chunkLine = 0;
  /** Framing of the response being read, from its head. */
  private contentLength = -1;
  private chunked = false;
  private untilClose = false;
  /** After the response, the connection may carry another (HTTP/1.1 without close, framed). */
  keepAlive = false;
  /** Keep-Alive: timeout=N of the last head, in seconds (-1: none). */
  keepAliveHint = -1;
  status = 0;
  /** What went wrong, once execute() returned -1. */
  error = '';

  constructor(private readonly sink: ResponseSink) {}

  /** Ready for the response to a request (`head`: a HEAD request; `upgrade`: it asks for one). */
  reset(head: boolean, upgrade: boolean): void {
    this.state = S_HEAD;
    this.head = head;
    this.upgrade = upgrade;
    this.pending = null;
    this.status = 0;
    this.keepAlive = false;
    this.keepAliveHint = -1;
  }

  /** Nothing of a response has arrived yet (a close now is a plain reset, not a cut response). */
  get idle(): boolean {
    return this.state === S_HEAD && this.pending === null;
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  get upgraded(): boolean {
    return this.state === S_UPGRADED;
  }

  /** The body runs to the close of the connection. */
  get readsToClose(): boolean {
    return this.state === S_EOF;
  }

  /** The head is in, the body is not complete: the body-idle clock runs. */
  get inBody(): boolean {
    return this.state !== S_HEAD && this.state < S_DONE;
  }

  /** Nothing more is parsed or reported (the connection is gone). */
  stop(): void {
    this.state = S_STOPPED;
    this.pending = null;
  }

  /**
   * Parses `buf` from `from`; returns where it stopped: buf.length when all was taken, less when
   * the sink paused, the response completed (the rest is not this response's) or it upgraded;
   * -1 on an error (`error` says which).
   */
  execute(buf: Buffer, from: number): number {
    let p = from;
    const len = buf.length;
    while (p < len) {
      switch (this.state) {
        case S_HEAD: {
          const r = this.readHead(buf, p);
          if (r < 0) return r === -2 ? len : -1;
          p = r;
          // An interim response: the next head follows.
          if (this.state === S_HEAD) continue;
          // Paused by the sink, upgraded, done (a bodyless response) or stopped: return here.
          if (this.paused || !this.inBody) {
            this.paused = false;
            return p;
          }
          continue;
        }
        case S_LENGTH: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          const more = this.sink.onBody(p === 0 && n === len ? buf : buf.subarray(p, p + n));
          p += n;
          if (this.state !== S_LENGTH) return p;
          if (this.remaining === 0) {
            this.complete(null);
            return p;
          }
          if (!more) return p;
          continue;
        }
        case S_EOF: {
          const more = this.sink.onBody(p === 0 ? buf : buf.subarray(p));
          p = len;
          if (!more) return p;
          continue;
        }
        case S_CHUNK_SIZE: {
          const c = buf[p]!;
          const h = HEX[c]!;
          if (h !== 0) {
            if (this.remaining > 0x1fffffffffffff / 16) return this.fail('chunk size too large');
            this.remaining = this.remaining * 16 + h - 1;
            this.chunkLine++;
          } else if (this.chunkLine === 0) return this.fail('chunk size is not a hex number');
          else if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (c === 0x3b /* ; */ || c === SP || c === HTAB) this.state = S_CHUNK_EXT;
          else return this.fail('invalid character in the chunk size');
          p++;
          continue;
        }
        case S_CHUNK_EXT: {
          // chunk-ext (RFC 9112 §7.1.1) is ignored; its bytes must be field text, bounded.
          const c = buf[p]!;
          if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (VALUE[c] === 0) return this.fail('invalid character in a chunk extension');
          else if (++this.chunkLine > MAX_CHUNK_LINE) return this.fail('chunk extension too long');
          p++;
          continue;
        }
        case S_CHUNK_SIZE_LF: {
          if (buf[p] !== LF) return this.fail('no LF after the chunk size');
          p++;
          if (this.remaining === 0) {
            this.state = S_TRAILERS;
            continue;
          }
          this.state = S_CHUNK_DATA;
          continue;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          const more = this.sink.onBody(p === 0 && n === len ? buf : buf.subarray(p, p + n));
          p += n;
          if (!more) return p;
          continue;
        }
        case S_CHUNK_DATA_CR:
          if (buf[p] !== CR) return this.fail('no CRLF after chunk data');
          this.state = S_CHUNK_DATA_LF;
          p++;
          continue;
        case S_CHUNK_DATA_LF:
          if (buf[p] !== LF) return this.fail('no CRLF after chunk data');
          this.state = S_CHUNK_SIZE;
          this.chunkLine = 0;
          this.remaining = 0;
          p++;
          continue;
        case S_TRAILERS: {
          const r = this.readTrailers(buf, p);
          if (r < 0) return r === -2 ? len : -1;
          return r;
        }
        default:
          // Done, upgraded or failed: the bytes are not this response's.
          return this.state === S_ERROR ? -1 : p;
      }
    }
    return p;
  }

  /** The connection ended: completes a body read to the close; false if a response was cut. */
  finish(): boolean {
    if (this.state === S_EOF) {
      this.complete(null);
      return true;
    }
    return false;
  }

  private paused = false;

  private fail(why: string): number {
    this.state = S_ERROR;
    this.error = why;
    this.pending = null;
    return -1;
  }

  /** Joins the bytes kept from earlier chunks with `buf` from `p` (a head split over reads). */
  private gather(buf: Buffer, p: number): Buffer {
    const pending = this.pending;
    if (pending === null) return p === 0 ? buf : buf.subarray(p);
    this.pending = null;
    return Buffer.concat([pending, buf.subarray(p)]);
  }

  /**
   * A whole head from `p`, or -2 when it is not all here yet (kept in `pending`), -1 on an
   * error. Returns the index after it in `buf`.
   */
  private readHead(buf: Buffer, p: number): number {
    const kept = this.pending === null ? 0 : this.pending.length;
    const b = this.gather(buf, p);
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) {
      if (b.length > MAX_HEAD) return this.fail('response head too large');
      // A view of the socket's chunk is kept as it is: node allocates each read afresh.
      this.pending = b;
      return -2;
    }
    if (end + 4 > MAX_HEAD) return this.fail('response head too large');
    // Where the head ends in `buf` (the kept bytes came before p).
    const after = p + (end + 4 - kept);
    const status = this.statusLine(b, end);
    if (status < 0) return -1;
    const headers: string[] = [];
    this.contentLength = -1;
    this.chunked = false;
    this.untilClose = false;
    this.keepAliveHint = -1;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.teSeen = false;
    if (this.fields(b, this.lineEnd + 2, end + 2, headers, true) < 0) return -1;
    return this.headDone(status, headers) ? after : -1;
  }

  private lineEnd = 0;
  private http10 = false;
  private connectionClose = false;
  private connectionKeepAlive = false;
  private teSeen = false;

  /** "HTTP/1.x SP 3DIGIT [SP reason-phrase] CRLF" (RFC 9112 §4); the status, or -1. */
  private statusLine(b: Buffer, end: number): number {
    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT; usher speaks 1.0 and 1.1 to upstreams.
    if (end < 12 || b[0] !== 0x48 || b[1] !== 0x54 || b[2] !== 0x54 || b[3] !== 0x50 || b[4] !== 0x2f || b[5] !== 0x31 || b[6] !== 0x2e) {
      return this.fail('not an HTTP/1.x status line');
    }
    const minor = b[7]!;
    if (minor !== 0x30 && minor !== 0x31) return this.fail('unsupported HTTP version');
    this.http10 = minor === 0x30;
    if (b[8] !== SP) return this.fail('no space after the HTTP version');
    const d0 = b[9]! - 0x30;
    const d1 = b[10]! - 0x30;
    const d2 = b[11]! - 0x30;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.fail('invalid status code');
    let i = 12;
    const c = b[i];
    if (c === SP) {
      // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); ignored.
      for (i++; b[i] !== CR; i++) if (VALUE[b[i]!] === 0) return this.fail('invalid character in the reason phrase');
    } else if (c !== CR) return this.fail('invalid status line');
    if (b[i + 1] !== LF) return this.fail('bare CR in the status line');
    this.lineEnd = i;
    return d0 * 100 + d1 * 10 + d2;
  }

  /**
   * Field lines from `p` up to `end` (the CRLF of the empty line) into `out`. In a head
   * (`head`), notes the framing and connection fields. Returns 0, or -1 on an error.
   */
  private fields(b: Buffer, p: number, end: number, out: string[], head: boolean): number {
    while (p < end) {
      const first = b[p]!;
      if (first === SP || first === HTAB) return this.fail('obs-fold (a field line starting with whitespace)');
      const nameStart = p;
      while (TOKEN[b[p]!] === 1) p++;
      if (b[p] !== COLON) return this.fail(p === nameStart ? 'empty field name' : 'invalid character in a field name (or whitespace before the colon)');
      const nameEnd = p++;
      if (nameEnd === nameStart) return this.fail('empty field name');
      while (b[p] === SP || b[p] === HTAB) p++;
      const valueStart = p;
      while (VALUE[b[p]!] === 1) p++;
      if (b[p] !== CR || b[p + 1] !== LF) return this.fail(b[p] === LF ? 'bare LF in a field' : b[p] === CR ? 'bare CR in a field' : 'invalid character in a field value');
      let valueEnd = p;
      while (valueEnd > valueStart && (b[valueEnd - 1] === SP || b[valueEnd - 1] === HTAB)) valueEnd--;
      p += 2;
      const name = b.latin1Slice(nameStart, nameEnd);
      out.push(name, b.latin1Slice(valueStart, valueEnd));
      if (head && this.framingField(b, name, nameStart, nameEnd - nameStart, valueStart, valueEnd) < 0) return -1;
    }
    return 0;
  }

  /** Content-Length, Transfer-Encoding, Connection and Keep-Alive, by length then name. */
  private framingField(b: Buffer, name: string, at: number, n: number, vs: number, ve: number): number {
    const c0 = b[at]! | 0x20;
    if (n === 14 && c0 === 0x63 && name.toLowerCase() === 'content-length') {
      // 1*DIGIT (RFC 9110 §8.6); a second one, even equal, is refused as llhttp does.
      if (this.contentLength >= 0) return this.fail('more than one Content-Length');
      if (vs === ve || ve - vs > 15) return this.fail('invalid Content-Length');
      let v = 0;
      for (let i = vs; i < ve; i++) {
        const d = b[i]! - 0x30;
        if (d < 0 || d > 9) return this.fail('invalid Content-Length');
        v = v * 10 + d;
      }
      this.contentLength = v;
      if (this.teSeen) return this.fail('Content-Length and Transfer-Encoding together');
    } else if (n === 17 && c0 === 0x74 && name.toLowerCase() === 'transfer-encoding') {
      if (this.contentLength >= 0) return this.fail('Content-Length and Transfer-Encoding together');
      if (this.chunked) return this.fail('chunked applied twice');
      this.teSeen = true;
      // The last coding decides (RFC 9112 §6.3): chunked frames the body; another runs to the close.
      const list = b.latin1Slice(vs, ve).toLowerCase();
      let chunkedAt = -1;
      let count = 0;
      for (const part of list.split(',')) {
        const token = part.trim();
        if (token === '') continue;
        if (token === 'chunked') {
          if (chunkedAt >= 0) return this.fail('chunked applied twice');
          chunkedAt = count;
        }
        count++;
      }
      if (chunkedAt >= 0 && chunkedAt !== count - 1) this.untilClose = true;
      else if (chunkedAt >= 0) this.chunked = true;
      else this.untilClose = true;
    } else if (n === 10 && (c0 === 0x63 || c0 === 0x6b)) {
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        const v = b.latin1Slice(vs, ve).toLowerCase();
        if (v === 'close') this.connectionClose = true;
        else if (v === 'keep-alive') this.connectionKeepAlive = true;
        else {
          for (const part of v.split(',')) {
            const t = part.trim();
            if (t === 'close') this.connectionClose = true;
            else if (t === 'keep-alive') this.connectionKeepAlive = true;
          }
        }
      } else if (lower === 'keep-alive') {
        const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(b.latin1Slice(vs, ve));
        if (m !== null) this.keepAliveHint = Number(m[1]);
      }
    }
    return 0;
  }

  /** The head is parsed: interim, upgrade, or the final head and how its body is framed. */
  private headDone(status: number, headers: string[]): boolean {
    this.status = status;
    if (status < 200) {
      if (status === 101) {
        if (!this.upgrade) return this.fail('101 to a request that asked for no upgrade') === 0;
        this.state = S_UPGRADED;
        this.sink.onHead(status, headers);
        return true;
      }
      // Another response follows on the same connection (RFC 9110 §15.2).
      if (status !== 100) this.sink.onInterim(status, headers);
      this.state = S_HEAD;
      return true;
    }
    this.keepAlive = this.http10 ? this.connectionKeepAlive && !this.connectionClose : !this.connectionClose;
    let state: number;
    if (this.head || status === 204 || status === 304) state = S_DONE;
    else if (this.chunked) {
      state = S_CHUNK_SIZE;
      this.chunkLine = 0;
      this.remaining = 0;
    } else if (this.untilClose || this.contentLength < 0) {
      state = S_EOF;
      this.keepAlive = false;
    } else if (this.contentLength === 0) state = S_DONE;
    else {
      state = S_LENGTH;
      this.remaining = this.contentLength;
    }
    this.state = state;
    const more = this.sink.onHead(status, headers);
    // The sink may have stopped everything (reset this parser for another request: not so here).
    if (this.state !== state) return true;
    if (state === S_DONE) {
      this.complete(null);
      return true;
    }
    if (!more) this.paused = true;
    return true;
  }

  /** The trailer section after the last chunk: "CRLF" alone, or fields then "CRLF CRLF". */
  private readTrailers(buf: Buffer, p: number): number {
    const kept = this.pending === null ? 0 : this.pending.length;
    const b = this.gather(buf, p);
    if (b.length < 2) {
      this.pending = b;
      return -2;
    }
    if (b[0] === CR && b[1] === LF) {
      this.complete(null);
      return p + 2 - kept;
    }
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) {
      if (b.length > MAX_HEAD) return this.fail('trailer section too large');
      this.pending = b;
      return -2;
    }
    const trailers: string[] = [];
    if (this.fields(b, 0, end + 2, trailers, false) < 0) return -1;
    this.complete(trailers);
    return p + end + 4 - kept;
  }

  private complete(trailers: string[] | null): void {
    this.state = S_DONE;
    this.sink.onComplete(trailers ?? NO_TRAILERS);
  }
}

/** Shared by every response without trailers: read, never written to. */
const NO_TRAILERS: string[] = [];
