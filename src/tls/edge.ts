// The HTTP-level edge of TLS, run before a request reaches the handler: strips forged client
// certificate headers and adds verified ones (mTLS), sets HSTS, answers ACME HTTP-01 challenges
// and redirects plain listeners to https. Knows nothing of routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ListenerConfig } from '../config/types.js';
import { applyClientIdentity } from './client-cert.js';
import type { ListenerTls } from './listener-tls.js';
import type { CertSource } from './source.js';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export class Edge {
  private redirectPort: number | undefined;
  private readonly tls: ListenerTls | undefined;
  private readonly source: CertSource | undefined;

  constructor(config: ListenerConfig, tls: ListenerTls | undefined, source: CertSource | undefined) {
    this.redirectPort = config.redirect_https;
    this.tls = tls;
    this.source = source;
  }

  update(config: ListenerConfig): void {
    this.redirectPort = config.redirect_https;
  }

  /** Returns true when the request was answered here. */
  onRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const tls = this.tls;
    applyClientIdentity(req, tls !== undefined && tls.config.client_auth !== null ? (req.socket as TLSSocket) : undefined);
    if (tls !== undefined) {
      // RFC 6797 §7.2: only over secure transport. An upstream's own value replaces it (writeHead).
      if (tls.config.hsts !== null) res.setHeader('strict-transport-security', tls.config.hsts);
      return false;
    }
    const url = req.url ?? '';
    // Never redirected: a CA fetches HTTP-01 answers over plain HTTP (RFC 8555 §8.3); a token
    // usher does not hold may belong to another ACME client behind it, so it is routed.
    if (url.startsWith(CHALLENGE_PREFIX)) return this.answerChallenge(url, res);
    if (this.redirectPort !== undefined) return redirect(req, res, this.redirectPort);
    return false;
  }

  /** RFC 8555 §8.3: the key authorization as application/octet-stream, over plain HTTP. */
  private answerChallenge(url: string, res: ServerResponse): boolean {
    const token = url.slice(CHALLENGE_PREFIX.length).split('?')[0]!;
    const answer = this.source?.httpChallenge(token);
    if (answer === undefined) return false;
    res.writeHead(200, ['content-type', 'application/octet-stream', 'content-length', String(Buffer.byteLength(answer))]);
    res.end(answer);
    return true;
  }
}

/** 308 keeps the method and body (RFC 9110 §15.4.9), unlike 301. */
function redirect(req: IncomingMessage, res: ServerResponse, port: number): boolean {
  const host = req.headers.host;
  if (host === undefined || !/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host)) {
    // Without a usable Host there is nowhere to send the client: let the handler answer (400).
    return false;
  }
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  const url = req.url ?? '/';
  const target = `https://${name}${port === 443 ? '' : `:${port}`}${url.startsWith('/') ? url : '/'}`;
  req.resume();
  res.writeHead(308, ['location', target, 'content-type', 'text/plain; charset=utf-8', 'content-length', '0']);
  res.end();
  return true;
}
