import type { ReasonCode } from './codes.js';
import { isUpstreamTlsError } from '../tls/upstream.js';

/**
 * Maps an error raised by the upstream client (undici, the native one in upstream/h1, or the OS) to a reason code.
 * `responseStarted`: response headers were received from the upstream.
 */
export function classifyUpstreamError(err: unknown, responseStarted: boolean): ReasonCode {
  // undici's llhttp errors: the code is sometimes missing ("Missing expected CR after header value").
  if ((err as { name?: unknown } | null)?.name === 'HTTPParserError') return 'upstream_bad_response';
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'upstream_connect_refused';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'H1_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'upstream_connect_timeout';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'upstream_connect_failed';
    // undici refused the request as usher built it (a field or target an upstream_request filter
    // broke): nothing was sent, and it is no server's fault.
    case 'UND_ERR_INVALID_ARG':
    case 'H1_INVALID_REQUEST':
      return 'internal_error';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'H1_HEADERS_TIMEOUT':
      return 'upstream_timeout';
    case 'UND_ERR_BODY_TIMEOUT':
    case 'H1_BODY_TIMEOUT':
      return 'upstream_body_timeout';
    // The native HTTP/1.1 client (src/upstream/h1/errors.ts).
    case 'H1_BAD_RESPONSE':
      return 'upstream_bad_response';
    case 'H1_CLOSED':
      return 'upstream_reset';
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_VERSION':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
    case 'HPE_STRICT':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return 'upstream_bad_response';
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return responseStarted ? 'upstream_reset' : classifySocket(err);
    default:
      if (typeof code === 'string' && code.startsWith('HPE_')) return 'upstream_bad_response';
      if (isUpstreamTlsError(code)) return 'upstream_tls_failed';
      return 'upstream_reset';
  }
}

// undici reports a malformed response head as a SocketError "bad response"/"bad upgrade".
function classifySocket(err: unknown): ReasonCode {
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && message.startsWith('bad ')) return 'upstream_bad_response';
  return 'upstream_reset';
}
