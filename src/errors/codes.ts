// The one registry of stable reason codes. Every local reply, access-log line and error carries
// one of these codes; the code is the contract (clients, dashboards and alerts key on it), the
// message is for humans. Add codes here only — never invent one at a call site.

export type ErrorSource = 'downstream' | 'upstream' | 'internal';

export interface ReasonInfo {
  status: number;
  source: ErrorSource;
  /** A retry on another upstream server is safe/useful for this failure (nothing was processed). */
  retryable: boolean;
  message: string;
}

const r = (status: number, source: ErrorSource, retryable: boolean, message: string): ReasonInfo =>
  Object.freeze({ status, source, retryable, message });

export const REASONS = Object.freeze({
  // routing and local answers
  no_route: r(404, 'internal', false, 'no route matches this request'),
  local_response: r(200, 'internal', false, 'answered by a respond route'),
  no_upstream_server: r(503, 'internal', false, 'the upstream has no server available'),
  shutting_down: r(503, 'internal', false, 'usher is shutting down'),
  internal_error: r(500, 'internal', false, 'internal error in usher'),
  access_denied: r(403, 'downstream', false, 'the client address is denied by an access list'),
  waf_blocked: r(403, 'downstream', false, 'the web application firewall (the CRS rules) blocked the request'),
  cors_preflight: r(204, 'internal', false, 'a CORS preflight answered by usher (allowed)'),
  cors_preflight_refused: r(403, 'downstream', false, 'a CORS preflight from an origin, or asking for a method or header, that the route does not allow'),
  rate_limited: r(429, 'downstream', false, 'a rate limit refused the request: retry after the Retry-After delay'),
  concurrency_limited: r(429, 'downstream', false, 'too many requests of this client (key) are in flight at once'),
  cache_hit: r(200, 'internal', false, 'answered from the cache'),
  cache_purged: r(200, 'internal', false, 'a PURGE request removed the stored responses of its URL'),
  cache_only_if_cached: r(504, 'downstream', false, 'the request said only-if-cached and the cache holds no response it may send'),
  rate_limit_unavailable: r(503, 'internal', false, 'the shared rate-limit store did not answer and the policy fails closed'),
  auth_required: r(401, 'downstream', false, 'the route requires authentication and the request has no credentials for it'),
  auth_invalid: r(401, 'downstream', false, 'the credentials (password or token) are wrong, expired or not accepted by this route'),
  auth_malformed: r(400, 'downstream', false, 'the Authorization field is malformed (not the scheme\'s syntax)'),
  auth_forbidden: r(403, 'downstream', false, 'the token verified but lacks a claim (or a claim value) the route requires'),
  auth_unavailable: r(503, 'internal', false, 'the auth service (forward auth) or the token\'s keys (a JWKS URL) could not be reached'),
  auth_timeout: r(504, 'internal', false, 'the auth service (forward auth) did not answer in time'),
  auth_denied: r(401, 'downstream', false, 'the auth service (forward auth) refused the request: its answer, status included, is relayed'),

  // upstream failures
  upstream_connect_refused: r(502, 'upstream', true, 'the upstream server refused the connection'),
  upstream_connect_timeout: r(504, 'upstream', true, 'connecting to the upstream server timed out'),
  upstream_connect_failed: r(502, 'upstream', true, 'could not connect to the upstream server'),
  upstream_timeout: r(504, 'upstream', false, 'the upstream server did not answer in time'),
  upstream_body_timeout: r(504, 'upstream', false, 'the upstream server stalled while sending the body'),
  upstream_reset: r(502, 'upstream', false, 'the upstream server closed the connection before answering'),
  upstream_bad_response: r(502, 'upstream', false, 'the upstream server sent a malformed response'),
  upstream_tls_failed: r(502, 'upstream', false, 'the TLS handshake with the upstream server failed (its certificate did not verify, or it refused ours)'),
  upstream_overloaded: r(503, 'upstream', false, 'the upstream is over its connection or queue limits'),

  // downstream (client) problems
  http_version_not_supported: r(505, 'downstream', false, 'usher speaks HTTP/1.0 and HTTP/1.1 on this listener'),
  method_not_allowed: r(405, 'downstream', false, 'usher does not proxy this method (CONNECT)'),
  bad_request: r(400, 'downstream', false, 'the request is malformed'),
  unsafe_path: r(400, 'downstream', false, 'the request path cannot be normalised safely (an encoded "/" or "\\", a control character, a fragment, a dot segment with ";params", a double or overlong encoding, or a bad percent-encoding)'),
  ambiguous_framing: r(400, 'downstream', false, 'the request framing (Content-Length / Transfer-Encoding) is invalid or ambiguous'),
  unsupported_transfer_encoding: r(501, 'downstream', false, 'the request uses a transfer coding usher does not implement'),
  missing_host: r(400, 'downstream', false, 'the request has no Host header or more than one'),
  request_header_timeout: r(408, 'downstream', false, 'the request head did not arrive in time'),
  request_body_timeout: r(408, 'downstream', false, 'the request body stalled'),
  request_line_too_long: r(414, 'downstream', false, 'the request target is too long'),
  headers_too_large: r(431, 'downstream', false, 'the request header section is too large'),
  too_many_headers: r(431, 'downstream', false, 'the request has too many header fields'),
  body_too_large: r(413, 'downstream', false, 'the request body is larger than allowed'),
  downstream_aborted: r(499, 'downstream', false, 'the client closed the connection before the response completed'),
  upgrade_not_allowed: r(400, 'downstream', false, 'this connection upgrade is not allowed (only websocket and configured protocols)'),
  tunnel_idle_timeout: r(408, 'downstream', false, 'the upgraded connection (WebSocket tunnel) was idle too long'),
  route_reloaded: r(503, 'internal', false, 'a reload changed or removed the route of this long-lived connection: its drain policy ended it'),
});

export type ReasonCode = keyof typeof REASONS;

export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  200: 'OK', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  413: 'Content Too Large', 414: 'URI Too Long', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  499: 'Client Closed Request', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
});

/** An error with a stable reason code. Wrap the original with `{ cause }`. */
export class ProxyError extends Error {
  readonly code: ReasonCode;
  readonly status: number;
  readonly source: ErrorSource;
  readonly retryable: boolean;

  constructor(code: ReasonCode, options?: { cause?: unknown; detail?: string }) {
    const info = REASONS[code];
    super(options?.detail ? `${info.message}: ${options.detail}` : info.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = info.status;
    this.source = info.source;
    this.retryable = info.retryable;
  }
}
