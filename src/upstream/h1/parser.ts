// A strict HTTP/1.1 response parser (RFC 9112) for the native upstream client: incremental over
// the socket's chunks, one head parsed in one pass over its bytes into a flat name/value array
// of latin1 strings, bodies handed on as views of the chunk that carried them (no copy). The
// field syntax, the chunked coding and the body states are the shared tokenizer's
// (src/util/h1-message.ts, also under the downstream request parser); the status line and the
// response's framing rules are here.
//
// Strict where a lenient reading would let one upstream response be taken for two or a body be
// mis-framed (response splitting, RFC 9112 §11.2): a bare LF, a CR not followed by LF, a NUL or
// other control character in a field, whitespace before a field's colon (§5.1), obs-fold
// (§5.2), a Content-Length that is not digits or that appears twice, Content-Length together
// with Transfer-Encoding (§6.3: "ought to be handled as an error"), chunked applied twice, a bad
// chunk size (whitespace after it only before a `;`, §7.1.1) or a missing CRLF after chunk data. Every one is an error; the connection is then
// never reused. Body length per §6.3: no body after HEAD, 1xx, 204 and 304; chunked when it is
// the final transfer coding; Content-Length; otherwise (or another final coding) the body runs
// to the close of the connection. Interim 1xx (RFC 9110 §15.2): 100 is dropped here (usher
// answers Expect: 100-continue itself), the others go to the sink, and parsing goes on.

import { CR, H1Message, LF, NO_TRAILERS, S_DONE, S_EOF, S_HEAD, S_LENGTH, S_UPGRADED, SP, VALUE, type BodySink } from '../../util/h1-message.js';

/** Where the parser's results go (the connection; no closure per response). */
export interface ResponseSink extends BodySink {
  /** An interim 1xx other than 100 and 101. */
  onInterim(status: number, headers: string[]): void;
  /** The final head; false pauses: execute() returns at once, before any body byte. */
  onHead(status: number, headers: string[]): boolean;
  /** The response is complete; `trailers` is the trailer section's fields (usually empty). */
  onComplete(trailers: string[]): void;
}

/** Largest response head (and trailer section): what undici was given (maxHeaderSize). */
export const MAX_HEAD = 64 * 1024;

export class ResponseParser extends H1Message {
  /** The response answers a HEAD request (no body whatever the fields say). */
  private head = false;
  /** The request asked for an upgrade: a 101 is expected, not an error. */
  private upgrade = false;
  private untilClose = false;
  /** After the response, the connection may carry another (HTTP/1.1 without close, framed). */
  keepAlive = false;
  /** Keep-Alive: timeout=N of the last head, in seconds (-1: none). */
  keepAliveHint = -1;
  status = 0;

  constructor(private readonly sink: ResponseSink) {
    super(sink, MAX_HEAD);
  }

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

  /** The body runs to the close of the connection. */
  get readsToClose(): boolean {
    return this.state === S_EOF;
  }

  /** The connection ended: completes a body read to the close; false if a response was cut. */
  finish(): boolean {
    if (this.state === S_EOF) {
      this.complete(NO_TRAILERS);
      return true;
    }
    return false;
  }

  protected completed(trailers: string[]): void {
    this.sink.onComplete(trailers);
  }

  /**
   * A whole head from `p`, or -2 when it is not all here yet (kept in `pending`), -1 on an
   * error. Returns the index after it in `buf`.
   */
  protected readHead(buf: Buffer, p: number): number {
    const kept = this.pending === null ? 0 : this.pending.length;
    const b = this.gather(buf, p);
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) {
      if (b.length > MAX_HEAD) return this.fail('response head too large', 'headers_too_large');
      // A view of the socket's chunk is kept as it is: node allocates each read afresh.
      this.pending = b;
      return -2;
    }
    if (end + 4 > MAX_HEAD) return this.fail('response head too large', 'headers_too_large');
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
      return this.fail('not an HTTP/1.x status line', 'bad_request');
    }
    const minor = b[7]!;
    if (minor !== 0x30 && minor !== 0x31) return this.fail('unsupported HTTP version', 'bad_request');
    this.http10 = minor === 0x30;
    if (b[8] !== SP) return this.fail('no space after the HTTP version', 'bad_request');
    const d0 = b[9]! - 0x30;
    const d1 = b[10]! - 0x30;
    const d2 = b[11]! - 0x30;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.fail('invalid status code', 'bad_request');
    let i = 12;
    const c = b[i];
    if (c === SP) {
      // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); ignored.
      for (i++; b[i] !== CR; i++) if (VALUE[b[i]!] === 0) return this.fail('invalid character in the reason phrase', 'bad_request');
    } else if (c !== CR) return this.fail('invalid status line', 'bad_request');
    if (b[i + 1] !== LF) return this.fail('bare CR in the status line', 'bad_request');
    this.lineEnd = i;
    return d0 * 100 + d1 * 10 + d2;
  }

  /** Content-Length, Transfer-Encoding, Connection and Keep-Alive, by length then name. */
  protected framingField(b: Buffer, name: string, at: number, n: number, vs: number, ve: number): number {
    const c0 = b[at]! | 0x20;
    if (n === 14 && c0 === 0x63 && name.toLowerCase() === 'content-length') {
      if (this.contentLengthField(b, vs, ve) < 0) return -1;
      if (this.teSeen) return this.fail('Content-Length and Transfer-Encoding together', 'ambiguous_framing');
    } else if (n === 17 && c0 === 0x74 && name.toLowerCase() === 'transfer-encoding') {
      if (this.contentLength >= 0) return this.fail('Content-Length and Transfer-Encoding together', 'ambiguous_framing');
      if (this.chunked) return this.fail('chunked applied twice', 'ambiguous_framing');
      this.teSeen = true;
      // The last coding decides (RFC 9112 §6.3): chunked frames the body; another runs to the close.
      const list = b.latin1Slice(vs, ve).toLowerCase();
      let chunkedAt = -1;
      let count = 0;
      for (const part of list.split(',')) {
        const token = part.trim();
        if (token === '') continue;
        if (token === 'chunked') {
          if (chunkedAt >= 0) return this.fail('chunked applied twice', 'ambiguous_framing');
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
        if (!this.upgrade) return this.fail('101 to a request that asked for no upgrade', 'bad_request') === 0;
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
    else if (this.chunked) state = -1;
    else if (this.untilClose || this.contentLength < 0) {
      state = S_EOF;
      this.keepAlive = false;
    } else if (this.contentLength === 0) state = S_DONE;
    else {
      state = S_LENGTH;
      this.remaining = this.contentLength;
    }
    if (state === -1) {
      this.startChunked();
      state = this.state;
    } else this.state = state;
    const more = this.sink.onHead(status, headers);
    // The sink may have stopped everything (reset this parser for another request: not so here).
    if (this.state !== state) return true;
    if (state === S_DONE) {
      this.complete(NO_TRAILERS);
      return true;
    }
    if (!more) this.paused = true;
    return true;
  }
}
