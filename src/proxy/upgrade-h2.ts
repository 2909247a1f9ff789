// WebSockets over HTTP/2 (RFC 8441): the client opens a stream with an extended CONNECT
// (`:method CONNECT`, `:protocol websocket`) and, once answered 200, speaks WebSocket frames on
// it. Upstreams speak HTTP/1.1, so usher turns the stream into an ordinary upgrade request
// (GET, Upgrade: websocket, a fresh Sec-WebSocket-Key: RFC 8441 §5 drops the key/accept
// handshake on HTTP/2) and, after the upstream's 101, joins the stream and the upstream socket.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { Tunnel } from './tunnel-pump.js';
import type { TunnelHost } from './tunnel.js';
import type { ResponseHead } from '../pipeline/types.js';
import { filterResponseHeaders, type ForwardSettings } from './headers.js';

/**
 * Rewrites an extended CONNECT for `websocket` into the HTTP/1.1 upgrade request the proxy stage
 * sends upstream. Returns false when the request is not one (an ordinary CONNECT, another
 * :protocol, or websocket upgrades not allowed).
 */
export function prepareH2WebSocket(req: Http2ServerRequest, rawHeaders: string[], allowed: readonly string[]): boolean {
  const protocol = req.headers[':protocol'];
  if (typeof protocol !== 'string' || protocol.toLowerCase() !== 'websocket' || !allowed.includes('websocket')) return false;
  rawHeaders.push('sec-websocket-key', randomBytes(16).toString('base64'));
  // node validates the new value; the upstream head is built from it.
  (req as { method: string }).method = 'GET';
  return true;
}

/** The 200 that answers the stream once the upstream answered 101 (RFC 8441 §5). */
export function h2TunnelHead(rawHeaders: readonly Buffer[], fwd: ForwardSettings, requestId: string): ResponseHead {
  const headers: string[] = [];
  filterResponseHeaders(rawHeaders, fwd, headers);
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    // The accept value answers usher's key, not the client's (it sent none).
    if (headers[i]!.toLowerCase() !== 'sec-websocket-accept') out.push(headers[i]!, headers[i + 1]!);
  }
  if (fwd.via !== null) out.push('via', fwd.via);
  out.push(fwd.requestIdHeader, requestId);
  return { status: 200, headers: out, local: false };
}

/** After the response phase: write the 200 and copy bytes both ways. */
export function openH2Tunnel(ex: TunnelHost, head: ResponseHead, upstream: Socket, idle: number): Tunnel {
  // Flat name/value arrays work on node's compatibility response as on node:http's.
  ex.res.writeHead(head.status, head.headers);
  const res = ex.res as unknown as Http2ServerResponse;
  const stream = res.stream;
  const req = ex.req as IncomingMessage;
  // Through the compatibility objects, which already own the stream's data events.
  const tunnel = new Tunnel(req, res as unknown as Writable, upstream, true, {
    // END_STREAM after what usher wrote; a stream that cannot end so is closed (RST_STREAM NO_ERROR).
    endClient: () => {
      if (!res.writableEnded && !stream.destroyed) res.end();
    },
    destroyClient: () => {
      if (!stream.destroyed && !res.writableEnded) stream.close();
    },
  });
  req.on('error', () => upstream.destroy());
  res.on('error', () => upstream.destroy());
  if (idle > 0) {
    stream.setTimeout(idle, () => {
      ex.reason = 'tunnel_idle_timeout';
      upstream.destroy();
      stream.close();
    });
  }
  return tunnel;
}
