// The HTTP/1.1 message tokenizer shared by the upstream response parser (src/upstream/h1/parser.ts)
// and the downstream request parser (src/server/h1/parser.ts): incremental over a socket's chunks,
// field lines parsed in one pass into a flat name/value array of latin1 strings, bodies handed on
// as views of the chunk that carried them (no copy). What differs between the two, the start line
// and how the head's fields frame the body (RFC 9112 §6.3), is each subclass's readHead() and
// framingField(); the field syntax, the Content-Length syntax, the chunked coding (sizes,
// extensions, trailers) and the body states are here, once.
//
// Strict where a lenient reading would let one message be taken for two or a body be mis-framed
// (RFC 9112 §11.2): a bare LF, a CR not followed by LF, a NUL or other control character in a
// field, whitespace before a field's colon (§5.1), obs-fold (§5.2), a Content-Length that is not
// digits or that appears twice, a bad chunk size, text after a chunk size that is not a chunk
// extension, a missing CRLF after chunk data.

declare global {
  interface Buffer {
    /** node's own Buffer#toString('latin1', start, end) without the argument checks (lib/buffer.js). */
    latin1Slice(start: number, end: number): string;
  }
}

/** What the body states report to (the connection; no closure per message). */
export interface BodySink {
  /** A piece of the body (a view of the chunk being parsed); false pauses after it. */
  onBody(chunk: Buffer): boolean;
}

export const S_HEAD = 0;
export const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_EXT = 3;
const S_CHUNK_SIZE_LF = 4;
const S_CHUNK_DATA = 5;
const S_CHUNK_DATA_CR = 6;
const S_CHUNK_DATA_LF = 7;
const S_TRAILERS = 8;
export const S_EOF = 9;
export const S_DONE = 10;
export const S_UPGRADED = 11;
export const S_ERROR = 12;
/** Stopped by the connection (a destroyed socket): nothing more is parsed or reported. */
export const S_STOPPED = 13;
/** Whitespace after a chunk size: only more of it or a ";" (chunk-ext's BWS, RFC 9112 §7.1.1). */
const S_CHUNK_BWS = 14;

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
const COLON = 58;

/** Longest chunk-size line (size and extensions); llhttp has none, a bound keeps memory flat. */
export const MAX_CHUNK_LINE = 4096;

/** tchar (RFC 9110 §5.6.2). */
export const TOKEN = new Uint8Array(256);
/** field-vchar, SP and HTAB (RFC 9110 §5.5): VCHAR and obs-text; no CTL, no DEL. */
export const VALUE = new Uint8Array(256);
/** Hex digit values + 1 (0: not a hex digit). */
const HEX = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch)) TOKEN[c] = 1;
  if (c === HTAB || (c >= 0x20 && c !== 0x7f)) VALUE[c] = 1;
  if (/[0-9a-fA-F]/.test(ch)) HEX[c] = parseInt(ch, 16) + 1;
}

/** Shared by every message without trailers: read, never written to. */
export const NO_TRAILERS: string[] = [];

/**
 * The states and field syntax of an HTTP/1.1 message. A subclass parses its start line and
 * head (readHead) and decides the framing from its fields (framingField, then sets `state`).
 * Error codes (`code`) are the request side's reason codes (src/errors/codes.ts); the response
 * side reads only `error`.
 */
export abstract class H1Message {
  protected state = S_HEAD;
  /** Bytes of an incomplete head, trailer section or chunk-size line from earlier chunks. */
  protected pending: Buffer | null = null;
  protected remaining = 0;
  private chunkLine = 0;
  /** Body bytes of the message so far (chunked), for maxBody. */
  private bodySoFar = 0;
  /** Framing of the message being read, from its head. */
  protected contentLength = -1;
  protected chunked = false;
  /** Set by the subclass when the sink asked for a pause: execute() returns at once. */
  protected paused = false;
  /** Largest head (and trailer section), in bytes. */
  protected maxHead: number;
  /** Most field lines in a head (more: too_many_headers). */
  protected maxFields = Infinity;
  /** Largest body (more: body_too_large). */
  protected maxBody = Infinity;
  /** What went wrong, once execute() returned -1. */
  error = '';
  /** The reason code of the error (bad_request, ambiguous_framing, headers_too_large, ...). */
  code = '';

  constructor(protected readonly bodySink: BodySink, maxHead: number) {
    this.maxHead = maxHead;
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  get upgraded(): boolean {
    return this.state === S_UPGRADED;
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
   * A whole head from `p`, or -2 when it is not all here yet (kept in `pending`), -1 on an
   * error. Returns the index after it in `buf` and leaves `state` at the body's first state
   * (S_HEAD again for an interim response or a bodyless message the sink let go on).
   */
  protected abstract readHead(buf: Buffer, p: number): number;
  /** A field of the head (not of trailers): framing and connection fields. 0, or -1 (failed). */
  protected abstract framingField(b: Buffer, name: string, at: number, n: number, vs: number, ve: number): number;
  /** The message is complete: sets the next state (and `paused` to return at once). */
  protected abstract completed(trailers: string[]): void;

  /**
   * Parses `buf` from `from`; returns where it stopped: buf.length when all was taken, less when
   * the sink paused, the message completed and the subclass stops there, or it upgraded; -1 on
   * an error (`error` and `code` say which).
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
          if (this.paused) {
            this.paused = false;
            return p;
          }
          // An interim response or a complete bodyless message: the next head follows.
          if (this.state === S_HEAD) continue;
          // Upgraded, done (a bodyless response) or stopped: return here.
          if (!this.inBody) return p;
          continue;
        }
        case S_LENGTH: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          const more = this.bodySink.onBody(p === 0 && n === len ? buf : buf.subarray(p, p + n));
          p += n;
          if (this.state !== S_LENGTH) return p;
          if (this.remaining === 0) {
            this.complete(NO_TRAILERS);
            if (this.goOn()) continue;
            return p;
          }
          if (!more) return p;
          continue;
        }
        case S_EOF: {
          const more = this.bodySink.onBody(p === 0 ? buf : buf.subarray(p));
          p = len;
          if (!more) return p;
          continue;
        }
        case S_CHUNK_SIZE: {
          const c = buf[p]!;
          const h = HEX[c]!;
          if (h !== 0) {
            if (this.remaining > 0x1fffffffffffff / 16) return this.fail('chunk size too large', 'ambiguous_framing');
            this.remaining = this.remaining * 16 + h - 1;
            this.chunkLine++;
          } else if (this.chunkLine === 0) return this.fail('chunk size is not a hex number', 'ambiguous_framing');
          else if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (c === 0x3b /* ; */) this.state = S_CHUNK_EXT;
          else if (c === SP || c === HTAB) this.state = S_CHUNK_BWS;
          else return this.fail('invalid character in the chunk size', 'ambiguous_framing');
          p++;
          continue;
        }
        case S_CHUNK_BWS: {
          const c = buf[p]!;
          if (c === 0x3b /* ; */) this.state = S_CHUNK_EXT;
          else if (c !== SP && c !== HTAB) return this.fail('invalid character in the chunk size', 'ambiguous_framing');
          else if (++this.chunkLine > MAX_CHUNK_LINE) return this.fail('chunk extension too long', 'bad_request');
          p++;
          continue;
        }
        case S_CHUNK_EXT: {
          // chunk-ext (RFC 9112 §7.1.1) is ignored; its bytes must be field text, bounded.
          const c = buf[p]!;
          if (c === CR) this.state = S_CHUNK_SIZE_LF;
          else if (VALUE[c] === 0) return this.fail('invalid character in a chunk extension', 'bad_request');
          else if (++this.chunkLine > MAX_CHUNK_LINE) return this.fail('chunk extension too long', 'bad_request');
          p++;
          continue;
        }
        case S_CHUNK_SIZE_LF: {
          if (buf[p] !== LF) return this.fail('no LF after the chunk size', 'ambiguous_framing');
          p++;
          if (this.remaining === 0) {
            this.state = S_TRAILERS;
            continue;
          }
          this.bodySoFar += this.remaining;
          if (this.bodySoFar > this.maxBody) return this.fail('the chunked body is larger than allowed', 'body_too_large');
          this.state = S_CHUNK_DATA;
          continue;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          const more = this.bodySink.onBody(p === 0 && n === len ? buf : buf.subarray(p, p + n));
          p += n;
          if (!more) return p;
          continue;
        }
        case S_CHUNK_DATA_CR:
          if (buf[p] !== CR) return this.fail('no CRLF after chunk data', 'ambiguous_framing');
          this.state = S_CHUNK_DATA_LF;
          p++;
          continue;
        case S_CHUNK_DATA_LF:
          if (buf[p] !== LF) return this.fail('no CRLF after chunk data', 'ambiguous_framing');
          this.state = S_CHUNK_SIZE;
          this.chunkLine = 0;
          this.remaining = 0;
          p++;
          continue;
        case S_TRAILERS: {
          const r = this.readTrailers(buf, p);
          if (r < 0) return r === -2 ? len : -1;
          p = r;
          if (this.goOn()) continue;
          return p;
        }
        default:
          // Done, upgraded or failed: the bytes are not this message's.
          return this.state === S_ERROR ? -1 : p;
      }
    }
    return p;
  }

  /** After a completed message: true to parse the next one in the same call. */
  private goOn(): boolean {
    if (this.paused) {
      this.paused = false;
      return false;
    }
    return this.state === S_HEAD;
  }

  protected fail(why: string, code: string): number {
    this.state = S_ERROR;
    this.error = why;
    this.code = code;
    this.pending = null;
    return -1;
  }

  /** Joins the bytes kept from earlier chunks with `buf` from `p` (a head split over reads). */
  protected gather(buf: Buffer, p: number): Buffer {
    const pending = this.pending;
    if (pending === null) return p === 0 ? buf : buf.subarray(p);
    this.pending = null;
    return Buffer.concat([pending, buf.subarray(p)]);
  }

  /** Ready for a chunked body (called by the subclass once the head says so). */
  protected startChunked(): void {
    this.state = S_CHUNK_SIZE;
    this.chunkLine = 0;
    this.remaining = 0;
    this.bodySoFar = 0;
  }

  /**
   * Field lines from `p` up to `end` (the CRLF of the empty line) into `out`. In a head
   * (`head`), passes each to framingField. Returns 0, or -1 on an error.
   */
  protected fields(b: Buffer, p: number, end: number, out: string[], head: boolean): number {
    const most = this.maxFields * 2;
    // The section as one string (one call into C++), each name and value a slice of it (a JS
    // builtin): 2 × fields calls of latin1Slice cost more than the rest of the parse.
    const p0 = p;
    const text = end > p ? b.latin1Slice(p, end) : '';
    while (p < end) {
      const first = b[p]!;
      if (first === SP || first === HTAB) return this.fail('obs-fold (a field line starting with whitespace)', 'bad_request');
      const nameStart = p;
      while (TOKEN[b[p]!] === 1) p++;
      if (b[p] !== COLON) return this.fail(p === nameStart ? 'empty field name' : 'invalid character in a field name (or whitespace before the colon)', 'bad_request');
      const nameEnd = p++;
      if (nameEnd === nameStart) return this.fail('empty field name', 'bad_request');
      while (b[p] === SP || b[p] === HTAB) p++;
      const valueStart = p;
      // The line's CR found natively, then every byte before it checked: field-vchar, SP, HTAB.
      const cr = b.indexOf(CR, p);
      for (; p < cr; p++) {
        const c = b[p]!;
        if (c < 0x20 ? c !== HTAB : c === 0x7f) break;
      }
      if (b[p] !== CR || b[p + 1] !== LF) return this.fail(b[p] === LF ? 'bare LF in a field' : b[p] === CR ? 'bare CR in a field' : 'invalid character in a field value', 'bad_request');
      let valueEnd = p;
      while (valueEnd > valueStart && (b[valueEnd - 1] === SP || b[valueEnd - 1] === HTAB)) valueEnd--;
      p += 2;
      if (out.length >= most) return this.fail('too many header fields', 'too_many_headers');
      const name = text.slice(nameStart - p0, nameEnd - p0);
      out.push(name, text.slice(valueStart - p0, valueEnd - p0));
      if (head && this.framingField(b, name, nameStart, nameEnd - nameStart, valueStart, valueEnd) < 0) return -1;
    }
    return 0;
  }

  /** A Content-Length value (1*DIGIT, RFC 9110 §8.6), at most once; 0, or -1 (failed). */
  protected contentLengthField(b: Buffer, vs: number, ve: number): number {
    // A second one, even equal, is refused as llhttp does.
    if (this.contentLength >= 0) return this.fail('more than one Content-Length', 'ambiguous_framing');
    if (vs === ve || ve - vs > 15) return this.fail('invalid Content-Length', 'ambiguous_framing');
    let v = 0;
    for (let i = vs; i < ve; i++) {
      const d = b[i]! - 0x30;
      if (d < 0 || d > 9) return this.fail('invalid Content-Length', 'ambiguous_framing');
      v = v * 10 + d;
    }
    this.contentLength = v;
    return 0;
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
      this.complete(NO_TRAILERS);
      return p + 2 - kept;
    }
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) {
      if (b.length > this.maxHead) return this.fail('trailer section too large', 'headers_too_large');
      this.pending = b;
      return -2;
    }
    if (end + 4 > this.maxHead) return this.fail('trailer section too large', 'headers_too_large');
    const trailers: string[] = [];
    if (this.fields(b, 0, end + 2, trailers, false) < 0) return -1;
    this.complete(trailers);
    return p + end + 4 - kept;
  }

  protected complete(trailers: string[]): void {
    this.state = S_DONE;
    this.completed(trailers);
  }
}
