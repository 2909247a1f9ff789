import { REASONS, STATUS_TEXT, type ReasonCode } from '../errors/index.js';

/**
 * The reply usher makes itself for `reason` (no route, upstream failure, limits): it carries
 * the request id and the stable reason code, as JSON when the client asked for it, else as text.
 * The exchange passes it through the response phase like any other head.
 */
export function localReplyFor(reason: ReasonCode, requestId: string, json: boolean): { status: number; headers: string[]; body: string } {
  const status = REASONS[reason].status;
  const text = STATUS_TEXT[status] ?? 'Error';
  const body = json
    ? `${JSON.stringify({ status, error: text, reason, request_id: requestId })}\n`
    : `${status} ${text}\nreason: ${reason}\nrequest_id: ${requestId}\n`;
  return {
    status,
    headers: ['content-type', json ? 'application/json' : 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'cache-control', 'no-store'],
    body,
  };
}

/** Whether the request's Accept header prefers JSON (looked at only when making a local reply). */
export function wantsJson(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 6 && rawHeaders[i]!.toLowerCase() === 'accept') {
      return rawHeaders[i + 1]!.includes('json');
    }
  }
  return false;
}

/** A raw reply for a connection whose request could not be parsed (clientError): no ServerResponse exists. */
export function rawErrorReply(reason: ReasonCode, requestId: string, requestIdHeader: string): string {
  const status = REASONS[reason].status;
  const text = STATUS_TEXT[status] ?? 'Error';
  const body = `${status} ${text}\nreason: ${reason}\nrequest_id: ${requestId}\n`;
  return (
    `HTTP/1.1 ${status} ${text}\r\n` +
    `content-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `${requestIdHeader}: ${requestId}\r\n` +
    `connection: close\r\n\r\n${body}`
  );
}
