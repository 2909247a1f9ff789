import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Exchange, type ExchangeOwner } from '../proxy/exchange.js';
import { attachRouteRequest, validHost } from '../router/index.js';
import type { Runtime } from './runtime.js';
import { h2HasBody, isH2Request } from './h2.js';

/**
 * The latest response on a downstream socket. The parser can still fail after the handler ran
 * (a bad chunk, an invalid Transfer-Encoding): the listener must not write a second reply into it.
 */
export const kResponse = Symbol('usher.response');
export type ResponseSocket = Socket & { [kResponse]?: ServerResponse };

/** A listener's way into the request path (its TLS edge, then handleRequest). */
export type RequestEntry = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean) => void;

export interface HandlerOwner extends ExchangeOwner {
  readonly runtime: Runtime;
  inflight: number;
  internalError(err: unknown): void;
}

/**
 * Phases 2–7 of the request path for one downstream request: id and client, limits, route,
 * request filters, then a local answer or the terminal proxy stage. Node's parser (llhttp,
 * strict mode) has already rejected bad framing, bare CR/LF, NUL and obs-fold, and heads
 * larger than limits.header_size (see listener.ts for those replies).
 */
export function handleRequest(owner: HandlerOwner, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  try {
    handle(owner, req, res, expectContinue);
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

function handle(owner: HandlerOwner, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  const rt = owner.runtime;
  rt.stats.requests++;
  const ex = new Exchange(owner, rt, req, res);
  owner.inflight++;
  rt.inflight++;
  (req.socket as ResponseSocket)[kResponse] = res;
  const limits = rt.config.limits;
  const head = ex.head;
  const url = req.url ?? '';

  // llhttp also accepts "GET /" (HTTP/0.9) and "HTTP/2.0" on an HTTP/1 connection: RFC 9110 §15.6.6.
  const h2 = req.httpVersionMajor === 2 && isH2Request(req);
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
  // Routing sees (and the upstream gets) the normalised path: src/router/normalize.ts.
  const rr = attachRouteRequest(req, host, path, ex.clientIp, rt.config.routing.encoded_slashes === 'keep');
  if (rr === undefined) return ex.fail('unsafe_path');
  const route = rt.router.route(rr);
  if (route === undefined) return ex.fail('no_route');
  ex.route = route;

  const filters = route.requestFilters;
  for (let i = 0; i < filters.length; i++) {
    const local = filters[i]!.onRequest!(ex);
    if (local !== undefined) return ex.respond(local.status, local.headers ?? [], local.body);
  }
  if (route.respond !== undefined) return ex.respond(route.respond.status, route.respond.headers, route.respond.body);
  // RFC 9112 §3.2.4 asterisk-form: undici cannot send it upstream, so only respond routes answer it.
  if (path === '*') return ex.fail('bad_request');

  // HTTP/2 frames the body itself (END_STREAM); Content-Length, if sent, is checked against DATA by node.
  const hasBody = h2 ? h2HasBody(req) : head.transferEncoding !== undefined || (head.contentLength !== undefined && head.contentLength !== '0');
  if (hasBody && limits.body !== null && head.contentLength !== undefined && Number(head.contentLength) > limits.body) {
    // Refused before any body byte is read, and before "100 Continue" is sent.
    return ex.fail('body_too_large', true);
  }
  // usher answers Expect: 100-continue itself, once it is willing to read the body.
  if (expectContinue) res.writeContinue();
  // A traffic split picks the cluster once per request; the mirror copies after the main request started.
  const cluster = route.split !== undefined ? route.split.choose(rr) : route.cluster;
  const target = route.rewrite !== undefined ? route.rewrite.target(rr) : rr.uri;
  ex.proxy(cluster!, target, hasBody);
  if (route.mirror !== undefined) route.mirror.send(ex, rr, target, hasBody);
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
