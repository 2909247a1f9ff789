import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenerChain } from '../pipeline/types.js';
import { Exchange, type ExchangeOwner } from '../proxy/exchange.js';
import { validHost } from '../router/index.js';
import { applyClientIdentity } from '../tls/client-cert.js';
import type { Runtime } from './runtime.js';

/**
 * The latest response on a downstream socket. The parser can still fail after the handler ran
 * (a bad chunk, an invalid Transfer-Encoding): the listener must not write a second reply into it.
 */
export const kResponse = Symbol('usher.response');
export type ResponseSocket = Socket & { [kResponse]?: ServerResponse };

/** What a listener hands every request it receives: its filters and its TLS client-auth mode. */
export interface ListenerEntry {
  chain: ListenerChain;
  /** The listener verifies client certificates: their identity goes upstream (X-Client-Cert-*). */
  readonly clientAuth: boolean;
}

export interface HandlerOwner extends ExchangeOwner {
  readonly runtime: Runtime;
  inflight: number;
  internalError(err: unknown): void;
}

/**
 * One downstream request — HTTP/1.1, HTTP/2 or an upgrade — enters here. The HTTP-level checks
 * (version, request line, framing, Host) answer first; then the Exchange walks the phases.
 * Node's parser (llhttp, strict mode) has already rejected bad framing, bare CR/LF, NUL and
 * obs-fold, and heads larger than limits.header_size (see listener.ts for those replies).
 */
export function handleRequest(owner: HandlerOwner, entry: ListenerEntry, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  try {
    // Before anything reads the head: forged X-Client-Cert-* removed, the verified identity added.
    applyClientIdentity(req, entry.clientAuth ? (req.socket as TLSSocket) : undefined);
    handle(owner, entry, req, res, expectContinue);
  } catch (err) {
    // A bug or a value node:http refuses must cost this request, never the process.
    owner.internalError(err);
    if (!res.headersSent) {
      res.shouldKeepAlive = false;
      res.writeHead(500, ['content-type', 'text/plain; charset=utf-8', 'connection', 'close']);
      res.end('500 Internal Server Error\nreason: internal_error\n');
    } else {
      res.destroy();
    }
  }
}

/** An Exchange for `req`, counted in flight (it is logged and counted like every request). */
export function newExchange(owner: HandlerOwner, chain: ListenerChain, req: IncomingMessage, res: ServerResponse): Exchange {
  const rt = owner.runtime;
  rt.stats.requests++;
  const ex = new Exchange(owner, rt, chain, req, res);
  owner.inflight++;
  rt.inflight++;
  return ex;
}

function handle(owner: HandlerOwner, entry: ListenerEntry, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  const ex = newExchange(owner, entry.chain, req, res);
  (req.socket as ResponseSocket)[kResponse] = res;
  const limits = owner.runtime.config.limits;
  const head = ex.head;
  const url = req.url ?? '';

  // llhttp also accepts "GET /" (HTTP/0.9) and "HTTP/2.0" on an HTTP/1 connection: RFC 9110 §15.6.6.
  const h2 = req.httpVersionMajor === 2 && (req as { stream?: unknown }).stream !== undefined;
  if (req.httpVersionMajor !== 1 && !h2) return ex.fail('http_version_not_supported', true);
  if (url.length + req.method!.length + 10 > limits.request_line) return ex.fail('request_line_too_long', true);
  if (req.rawHeaders.length > limits.header_count * 2) return ex.fail('too_many_headers', true);
  if (head.transferEncoding !== undefined) {
    const te = head.transferEncoding;
    const codings = te === 'chunked' ? ['chunked'] : te.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '');
    // RFC 9112 §6.3 (4): in a request, chunked must be the final coding, once, or the body length
    // cannot be known: 400 and close. (llhttp flags this too, but only after this handler ran.)
    // §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing, whatever it says.
    if (codings.length === 0 || codings.indexOf('chunked') !== codings.length - 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)) {
      return ex.fail('ambiguous_framing', true);
    }
    // A coding list ending in chunked (e.g. "gzip, chunked"): forwarding it re-framed would
    // silently drop the inner coding. RFC 9112 §6.1: 501.
    if (codings.length > 1) return ex.fail('unsupported_transfer_encoding', true);
  }

  let host = head.host;
  let path = url;
  if (url.charCodeAt(0) !== 47 /* / */) {
    const target = absoluteTarget(url, req.method!);
    if (target === undefined) return ex.fail('bad_request', true);
    // The target's authority replaces Host (RFC 9112 §3.2.2) — for routing and upstream.
    if (target.host !== undefined) host = head.host = target.host;
    path = target.path;
  }
  if (head.hostCount > 1 || (head.hostCount === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1)) {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
    return ex.fail('missing_host', true);
  }
  // A Host usher cannot read one way only (src/router/request.ts validHost) is refused before routing.
  if (host !== undefined && !validHost(host)) return ex.fail('bad_request', true);
  ex.start(host, path, expectContinue);
}

/** RFC 9112 §3.2.2 absolute-form ("http://host/path") and §3.2.4 asterisk-form ("OPTIONS *"). */
function absoluteTarget(url: string, method: string): { host: string | undefined; path: string } | undefined {
  if (url === '*') return method === 'OPTIONS' ? { host: undefined, path: '*' } : undefined;
  const scheme = url.indexOf('://');
  if (scheme < 0) return undefined;
  const s = url.slice(0, scheme).toLowerCase();
  if (s !== 'http' && s !== 'https') return undefined;
  const rest = url.slice(scheme + 3);
  const slash = rest.search(/[/?]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  if (authority === '' || authority.includes('@')) return undefined;
  let path = slash < 0 ? '/' : rest.slice(slash);
  if (path.charCodeAt(0) === 63 /* ? */) path = `/${path}`;
  return { host: authority, path };
}
