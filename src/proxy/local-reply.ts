import { validateHeaderName, validateHeaderValue } from 'node:http';
import { REASONS, STATUS_TEXT, type ReasonCode } from '../errors/index.js';
import type { LocalResponse, StreamedBody } from '../pipeline/types.js';

/**
 * The reply usher makes itself for `reason` (no route, upstream failure, limits): it carries
 * the request id and the stable reason code, as JSON when the client asked for it, else as text.
 * The exchange passes it through the response phase like any other head. `status`: another
 * status than the reason's own (a WAF rule's `deny,status:NNN`).
 */
export function localReplyFor(reason: ReasonCode, requestId: string, json: boolean, status: number = REASONS[reason].status): { status: number; headers: string[]; body: string } {
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

/**
 * Why node:http could not write a filter's reply as given (undefined: it can). Checked when the
 * reply is made, so that the failure is the filter's, by name, and nothing is half written.
 */
export function localReplyProblem(reply: LocalResponse, fields = true): string | undefined {
  const { status, headers, body } = reply as { status: unknown; headers: unknown; body: unknown };
  // RFC 9110 §15: a final status is 200-599 (node would write any 100-999).
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return `status ${String(status)} is not a final status (200-599)`;
  if (headers !== undefined && (!Array.isArray(headers) || headers.length % 2 !== 0)) return 'headers are not flat name/value pairs';
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) && !isStreamedBody(body)) return 'the body is neither a string, a Buffer nor a streamed body';
  return fields ? headProblem((headers ?? []) as readonly unknown[]) : undefined;
}

export function isStreamedBody(body: unknown): body is StreamedBody {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Partial<StreamedBody>;
  return typeof b.open === 'function' && typeof b.close === 'function' && Number.isInteger(b.length) && b.length! >= 0;
}

/** The first field node:http refuses to write (a name that is not a token, a value with CR, LF or NUL), or undefined. */
export function headProblem(headers: readonly unknown[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (typeof name !== 'string' || typeof value !== 'string') return `field ${i / 2} is not a pair of strings`;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}
