// A strict HTTP/1.1 request parser (RFC 9112) for the downstream side, on the tokenizer the
// upstream response parser uses (src/util/h1-message.ts: field syntax, Content-Length, chunked
// coding, body states). Incremental over a connection's chunks (a head split anywhere), bodies
// handed on as views of the chunk that carried them, several requests in one chunk (pipelining)
// parsed one after the other. Not wired into the listener yet (node:http still serves it).
//
// What README's *Strict framing* promises for requests, refused here with the reason code the
// listener answers with (src/errors/codes.ts):
// - ambiguous_framing (400): Content-Length with Transfer-Encoding, two Content-Lengths (even
//   equal) or a list, a Content-Length that is not digits, Transfer-Encoding whose final coding
//   is not chunked (the length cannot be known, RFC 9112 §6.3), chunked twice, Transfer-Encoding
//   in HTTP/1.0 (§6.1), a bad chunk size (not hex, past 2^53), text after a chunk size that is
//   not a chunk extension, no CRLF after chunk data;
// - unsupported_transfer_encoding (501): a coding list ending in chunked ("gzip, chunked"):
//   usher would forward it re-framed and drop the inner coding (§6.1);
// - bad_request (400): a bare LF or a CR not followed by LF anywhere in the head, obs-fold
//   (§5.2), whitespace before a colon (§5.1), a CTL/DEL in a value, a non-token byte in a method
//   or field name, a byte other than visible ASCII in the target, a target not in one of §3.2's forms, a start line that is not "method SP target SP
//   HTTP/d.d", an HTTP/0.9 request line; a bad or overlong chunk extension;
// - http_version_not_supported (505): HTTP/d.d other than 1.0 and 1.1 (the PRI preface too);
// - request_line_too_long (414), headers_too_large (431, the whole head, trailers too),
//   too_many_headers (431), body_too_large (413, from Content-Length at the head, or as chunks
//   add up).
// Empty lines before a request line are skipped (§2.2). The Host checks, the target's form
// (absolute, asterisk) and CONNECT's 405 are the handler's, as today.

import type { ReasonCode } from '../../errors/codes.js';
import { CR, H1Message, HTAB, LF, NO_TRAILERS, S_DONE, S_HEAD, S_LENGTH, S_UPGRADED, SP, TOKEN, type BodySink } from '../../util/h1-message.js';

export const FRAMING_NONE = 0;
export const FRAMING_LENGTH = 1;
export const FRAMING_CHUNKED = 2;

/** A request's head, as parsed (one object per request). */
export interface RequestHead {
  method: string;
  /** The request-target as sent (origin-, absolute-, authority- or asterisk-form). */
  target: string;
  /** 0 or 1 (HTTP/1.0, HTTP/1.1). */
  minor: number;
  /** Field names as sent and values without surrounding whitespace: [name, value, ...]. */
  headers: string[];
  /** FRAMING_NONE (no body), FRAMING_LENGTH (contentLength bytes) or FRAMING_CHUNKED. */
  framing: number;
  contentLength: number;
  /** The connection may carry another request after this one's response (§9.3). */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade field, or CONNECT: the parser stops after the message. */
  upgrade: boolean;
  /** Expect: 100-continue (RFC 9110 §10.1.1). */
  expectContinue: boolean;
}

/** Where the parser's results go (the connection). */
export interface RequestSink extends BodySink {
  /** A request's head; false pauses: execute() returns at once, before any body byte. */
  onRequest(head: RequestHead): boolean;
  /** The request is complete; false stops execute() after it (the rest of the chunk is the next's). */
  onComplete(trailers: string[]): boolean;
}

export interface RequestLimits {
  /** Longest request line, CRLF not counted (limits.request_line; more: 414). */
  requestLine: number;
  /** Largest head, request line and final CRLF included (limits.header_size; more: 431). */
  headerSize: number;
  /** Most header fields (limits.header_count; more: 431). */
  headerCount: number;
  /** Largest body (limits.body; more: 413); Infinity for none. */
  body: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { requestLine: 8 * 1024, headerSize: 16 * 1024, headerCount: 100, body: Infinity };

/** The request-target's bytes: visible ASCII (RFC 3986 characters; others percent-encoded, as llhttp). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) TARGET[c] = 1;
/** A URI scheme's characters (RFC 3986 §3.1); its first is ALPHA. */
const SCHEME = new Uint8Array(256);
const ALPHA = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z]/.test(ch)) ALPHA[c] = 1;
  if (/[A-Za-z0-9+.-]/.test(ch)) SCHEME[c] = 1;
}

export class RequestParser extends H1Message {
  private readonly limits: RequestLimits;
  /** The head of the request being read (its body, if any, follows). */
  request: RequestHead | null = null;

  constructor(private readonly sink: RequestSink, limits: RequestLimits = DEFAULT_REQUEST_LIMITS) {
    super(sink, limits.headerSize);
    this.limits = limits;
    this.maxFields = limits.headerCount;
    this.maxBody = limits.body;
  }

  /** Nothing of a request has arrived since the last one (a close now is a clean one). */
  get idle(): boolean {
    return this.state === S_HEAD && this.pending === null;
  }

  /** The error's reason code, once execute() returned -1. */
  get reason(): ReasonCode {
    return this.code as ReasonCode;
  }

  /** The connection ended: true if it ended between requests, false if a request was cut. */
  finish(): boolean {
    return this.idle || this.state === S_DONE || this.state === S_UPGRADED;
  }

  protected completed(trailers: string[]): void {
    this.state = this.request !== null && this.request.upgrade ? S_UPGRADED : S_HEAD;
    if (!this.sink.onComplete(trailers)) this.paused = true;
  }

  // Per-head scratch, set by framingField.
  private teCodings = '';
  private connClose = false;
  private connKeepAlive = false;
  private connUpgrade = false;
  private upgradeField = false;
  private expect = false;

  protected readHead(buf: Buffer, p: number): number {
    const kept = this.pending === null ? 0 : this.pending.length;
    let b = this.gather(buf, p);
    // Empty lines before the request line are ignored (RFC 9112 §2.2), even between requests.
    let s = 0;
    while (b[s] === CR && b[s + 1] === LF) s += 2;
    if (s === b.length || (s === b.length - 1 && b[s] === CR)) {
      this.pending = s === b.length ? null : b.subarray(s);
      return -2;
    }
    if (b[s] === LF) return this.fail('bare LF before the request line', 'bad_request');
    if (b[s] === CR) return this.fail('bare CR before the request line', 'bad_request');
    const end = b.indexOf('\r\n\r\n', s);
    if (end < 0) return this.incomplete(b, s, kept);
    const headEnd = end + 4;
    if (headEnd - s > this.limits.headerSize) return this.tooLarge(b, s);
    // Where the head ends in `buf` (the kept bytes came before p).
    const after = p + (headEnd - kept);
    // Positions below are relative to the request line.
    if (s > 0) b = b.subarray(s);
    const lineEnd = this.requestLine(b);
    if (lineEnd < 0) return -1;
    const headers: string[] = [];
    this.contentLength = -1;
    this.chunked = false;
    this.teCodings = '';
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.upgradeField = false;
    this.expect = false;
    if (this.fields(b, lineEnd + 2, end - s + 2, headers, true) < 0) return -1;
    return this.headDone(headers) ? after : -1;
  }

  /** No end of the head yet: keep it, unless it already breaks a limit or has a bare CR/LF. */
  private incomplete(b: Buffer, s: number, kept: number): number {
    const size = b.length - s;
    if (size > this.limits.headerSize) return this.tooLarge(b, s);
    const eol = b.indexOf(LF, s);
    if (eol < 0 ? size > this.limits.requestLine + 1 : eol - 1 - s > this.limits.requestLine) return this.fail('request line too long', 'request_line_too_long');
    // A bare CR or LF in the bytes that arrived now (the earlier ones were checked before): a
    // client that ends lines with LF alone gets its 400 now, not at the head timeout.
    for (let i = Math.max(s + 1, kept - 1); i < b.length; i++) {
      const c = b[i]!;
      if (c === LF && b[i - 1] !== CR) return this.fail('bare LF in the head', 'bad_request');
      if (b[i - 1] === CR && c !== LF) return this.fail('bare CR in the head', 'bad_request');
    }
    this.pending = s === 0 ? b : b.subarray(s);
    return -2;
  }

  /** The head is over the size limit: 414 if its request line alone is, 431 otherwise. */
  private tooLarge(b: Buffer, s: number): number {
    const eol = b.indexOf('\r\n', s);
    if (eol < 0 || eol - s > this.limits.requestLine) return this.fail('request line too long', 'request_line_too_long');
    return this.fail('request head too large', 'headers_too_large');
  }

  private method = '';
  private target = '';
  private minor = 1;

  /** "method SP request-target SP HTTP/1.x CRLF" (RFC 9112 §3); the index of its CR, or -1. */
  private requestLine(b: Buffer): number {
    let i = 0;
    while (TOKEN[b[i]!] === 1) i++;
    if (i === 0) return this.fail('no method', 'bad_request');
    if (b[i] !== SP) return this.fail('invalid character in the method', 'bad_request');
    this.method = method(b, i);
    const ts = ++i;
    while (TARGET[b[i]!] === 1) i++;
    if (i === ts) return this.fail(b[i] === SP || b[i] === HTAB ? 'more than one space after the method' : 'no request target', 'bad_request');
    const te = i;
    // origin-form "/...", asterisk-form "*", absolute-form "scheme:..." or CONNECT's authority-form
    // (RFC 9112 §3.2); the handler checks the rest of the absolute and authority forms.
    const t0 = b[ts]!;
    if (t0 !== 0x2f /* / */) {
      if (t0 === 0x2a /* * */) {
        if (te !== ts + 1) return this.fail('invalid request target', 'bad_request');
      } else if (this.method !== 'CONNECT') {
        let k = ts;
        while (k < te && SCHEME[b[k]!] === 1) k++;
        if (k === ts || b[k] !== 0x3a /* : */ || ALPHA[t0] !== 1) return this.fail('invalid request target', 'bad_request');
      }
    }
    if (b[i] === CR) return this.fail('no HTTP version (HTTP/0.9)', 'bad_request');
    if (b[i] !== SP) return this.fail('invalid character in the request target', 'bad_request');
    i++;
    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT, then CRLF.
    if (b[i] !== 0x48 || b[i + 1] !== 0x54 || b[i + 2] !== 0x54 || b[i + 3] !== 0x50 || b[i + 4] !== 0x2f) {
      return this.fail('invalid HTTP version', 'bad_request');
    }
    const major = b[i + 5]! - 0x30;
    const minor = b[i + 7]! - 0x30;
    if (major < 0 || major > 9 || b[i + 6] !== 0x2e || minor < 0 || minor > 9) return this.fail('invalid HTTP version', 'bad_request');
    const eol = i + 8;
    if (b[eol] !== CR || b[eol + 1] !== LF) return this.fail('invalid request line ending', 'bad_request');
    if (eol > this.limits.requestLine) return this.fail('request line too long', 'request_line_too_long');
    if (major !== 1 || minor > 1) return this.fail(`HTTP/${major}.${minor} is not supported`, 'http_version_not_supported');
    this.minor = minor;
    this.target = b.latin1Slice(ts, te);
    return eol;
  }

  /** Content-Length, Transfer-Encoding, Connection, Upgrade and Expect, by length then name. */
  protected framingField(b: Buffer, name: string, at: number, n: number, vs: number, ve: number): number {
    const c0 = b[at]! | 0x20;
    if (n === 14 && c0 === 0x63 && name.toLowerCase() === 'content-length') {
      return this.contentLengthField(b, vs, ve);
    }
    if (n === 17 && c0 === 0x74 && name.toLowerCase() === 'transfer-encoding') {
      // Several fields are one list (RFC 9110 §5.3): "gzip" then "chunked" is "gzip, chunked".
      const v = b.latin1Slice(vs, ve);
      this.teCodings = this.teCodings === '' ? v : `${this.teCodings},${v}`;
      // A field with an empty value still says Transfer-Encoding was sent.
      if (this.teCodings === '') this.teCodings = ',';
      return 0;
    }
    if (n === 10 && c0 === 0x63 && name.toLowerCase() === 'connection') {
      const v = b.latin1Slice(vs, ve).toLowerCase();
      if (v === 'keep-alive') this.connKeepAlive = true;
      else if (v === 'close') this.connClose = true;
      else {
        for (const part of v.split(',')) {
          const t = part.trim();
          if (t === 'close') this.connClose = true;
          else if (t === 'keep-alive') this.connKeepAlive = true;
          else if (t === 'upgrade') this.connUpgrade = true;
        }
      }
      return 0;
    }
    if (n === 7 && c0 === 0x75 && name.toLowerCase() === 'upgrade') this.upgradeField = true;
    else if (n === 6 && c0 === 0x65 && name.toLowerCase() === 'expect') {
      if (ve - vs === 12 && b.latin1Slice(vs, ve).toLowerCase() === '100-continue') this.expect = true;
    }
    return 0;
  }

  /** The head is parsed: the framing (RFC 9112 §6.3 for requests), then the sink. */
  private headDone(headers: string[]): boolean {
    let framing = FRAMING_NONE;
    const cl = this.contentLength;
    if (this.teCodings !== '') {
      if (cl >= 0) return this.fail('Content-Length and Transfer-Encoding together', 'ambiguous_framing') === 0;
      if (this.minor === 0) return this.fail('Transfer-Encoding in an HTTP/1.0 request', 'ambiguous_framing') === 0;
      const te = this.teCodings.toLowerCase();
      if (te !== 'chunked') {
        // An empty element ("chunked, ", or a second, empty Transfer-Encoding line) is refused:
        // RFC 9110 §5.6.1 lets a recipient skip it, but on the field that frames the body a
        // proxy takes no reading another hop may not share (llhttp of Node 24 refuses it too).
        const codings = te.split(',').map((c) => c.trim());
        if (codings.includes('')) return this.fail('an empty element in Transfer-Encoding', 'ambiguous_framing') === 0;
        const at = codings.indexOf('chunked');
        if (at < 0 || at !== codings.length - 1) return this.fail('Transfer-Encoding whose final coding is not chunked (or chunked twice)', 'ambiguous_framing') === 0;
        if (codings.length > 1) return this.fail(`a transfer coding other than chunked (${codings.slice(0, -1).join(', ')})`, 'unsupported_transfer_encoding') === 0;
      }
      framing = FRAMING_CHUNKED;
    } else if (cl > 0) {
      if (cl > this.limits.body) return this.fail('Content-Length is larger than allowed', 'body_too_large') === 0;
      framing = FRAMING_LENGTH;
    }
    const method = this.method;
    const upgrade = (this.connUpgrade && this.upgradeField) || method === 'CONNECT';
    const head: RequestHead = {
      method,
      target: this.target,
      minor: this.minor,
      headers,
      framing,
      contentLength: framing === FRAMING_LENGTH ? cl : framing === FRAMING_NONE ? 0 : -1,
      keepAlive: this.minor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose,
      upgrade,
      expectContinue: this.expect,
    };
    this.request = head;
    if (framing === FRAMING_CHUNKED) this.startChunked();
    else if (framing === FRAMING_LENGTH) {
      this.state = S_LENGTH;
      this.remaining = cl;
    } else this.state = S_DONE;
    const state = this.state;
    const more = this.sink.onRequest(head);
    // The sink may have stopped the parser (the connection closed).
    if (this.state !== state) return true;
    if (state === S_DONE) {
      // No body: complete at once (the sink's onComplete may pause before the next request).
      this.complete(NO_TRAILERS);
      if (!more) this.paused = true;
      return true;
    }
    if (!more) this.paused = true;
    return true;
  }
}

/** The method's string: the common ones without a slice. */
function method(b: Buffer, n: number): string {
  const c = b[0];
  if (n === 3 && c === 0x47 && b[1] === 0x45 && b[2] === 0x54) return 'GET';
  if (n === 4 && c === 0x50 && b[1] === 0x4f && b[2] === 0x53 && b[3] === 0x54) return 'POST';
  if (n === 4 && c === 0x48 && b[1] === 0x45 && b[2] === 0x41 && b[3] === 0x44) return 'HEAD';
  return b.latin1Slice(0, n);
}
