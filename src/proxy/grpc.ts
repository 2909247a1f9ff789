// gRPC over HTTP/2 (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): usher
// proxies gRPC like any request; two things differ. A reply usher makes itself must be a gRPC
// status (a client cannot read an HTML 502), and a Trailers-Only response (the status in the
// head, no body) must stay a single HEADERS frame with END_STREAM, or clients see no status.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { REASONS, type ReasonCode } from '../errors/index.js';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = Object.freeze({
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
});

/** A gRPC request: content-type application/grpc or application/grpc+proto etc. (not grpc-web, which frames trailers in the body). */
export function isGrpc(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc') && (ct.length === 16 || ct.charCodeAt(16) === 43 /* + */ || ct.charCodeAt(16) === 59 /* ; */);
}

/**
 * The gRPC status for a reason code, from its HTTP status as in gRPC's "HTTP to gRPC status
 * code mapping" (502/503 → UNAVAILABLE), except that timeouts are DEADLINE_EXCEEDED and an
 * unknown route or method is UNIMPLEMENTED.
 */
export function grpcStatusFor(reason: ReasonCode): number {
  switch (REASONS[reason].status) {
    case 404:
    case 405:
    case 501:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 408:
    case 504:
      return reason === 'upstream_connect_timeout' ? GRPC_STATUS.UNAVAILABLE : GRPC_STATUS.DEADLINE_EXCEEDED;
    case 413:
    case 431:
      return GRPC_STATUS.RESOURCE_EXHAUSTED;
    case 499:
      return GRPC_STATUS.CANCELLED;
    case 502:
    case 503:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.INTERNAL;
  }
}

/** grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md, "Responses"). */
export function percentEncode(s: string): string {
  return s.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}

/**
 * The head of usher's own reply to a gRPC request: HTTP 200, grpc-status from the reason, no
 * body. It passes the response phase like any local reply; grpcTrailersOnly then writes it as
 * one HEADERS frame with END_STREAM (Trailers-Only).
 */
export function grpcLocalHeaders(reason: ReasonCode): string[] {
  return [
    'content-type',
    'application/grpc',
    'grpc-status',
    String(grpcStatusFor(reason)),
    'grpc-message',
    percentEncode(`usher: ${reason}: ${REASONS[reason].message}`),
    'usher-reason',
    reason,
  ];
}

/**
 * If the upstream's head carries grpc-status it is a Trailers-Only response: set the fields
 * without writing them, so that the end of the (empty) body sends them as one HEADERS frame
 * with END_STREAM. Returns whether it did.
 */
export function grpcTrailersOnly(res: ServerResponse, status: number, headers: readonly string[]): boolean {
  if (status !== 200 || !hasGrpcStatus(headers)) return false;
  res.statusCode = 200;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    const prev = res.getHeader(name);
    res.setHeader(name, prev === undefined ? headers[i + 1]! : [...(Array.isArray(prev) ? prev : [String(prev)]), headers[i + 1]!]);
  }
  return true;
}

function hasGrpcStatus(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 11 && name.toLowerCase() === 'grpc-status') return true;
  }
  return false;
}
