// Errors of the native HTTP/1.1 upstream client. Each has a stable code that
// src/errors/upstream.ts maps to a reason code, like undici's (socket errors from the OS and
// TLS keep their own codes: ECONNREFUSED, ECONNRESET, ERR_SSL_*...).

export type H1ErrorCode =
  /** The response broke RFC 9112 (status line, a field, framing, a chunk): upstream_bad_response. */
  | 'H1_BAD_RESPONSE'
  /** The upstream closed the connection before the response was complete: upstream_reset. */
  | 'H1_CLOSED'
  /** timeouts.connect: upstream_connect_timeout. */
  | 'H1_CONNECT_TIMEOUT'
  /** timeouts.response_header: upstream_timeout. */
  | 'H1_HEADERS_TIMEOUT'
  /** timeouts.body_idle: upstream_body_timeout. */
  | 'H1_BODY_TIMEOUT'
  /** The request body's length differs from its Content-Length: upstream_reset, as undici's. */
  | 'H1_REQUEST_LENGTH'
  /** The request head as a filter left it cannot be sent (a field, the target): internal_error. */
  | 'H1_INVALID_REQUEST'
  /** The pool is closed (a request on a retired runtime). */
  | 'H1_POOL_CLOSED';

export class H1Error extends Error {
  readonly code: H1ErrorCode;
  constructor(code: H1ErrorCode, message: string) {
    super(message);
    this.name = 'H1Error';
    this.code = code;
  }
}
