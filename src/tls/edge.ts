// The HTTP-level edge of TLS, as a listener filter (outermost on every request of its listener):
// answers ACME HTTP-01 challenges and redirects plain listeners to https (early_request), and
// sets HSTS on every response of a TLS listener (response). Knows nothing of routes. The client
// certificate's identity headers are applied before the request is read at all (client-cert.ts).
import type { ListenerConfig } from '../config/types.js';
import type { Filter, LocalResponse, RequestContext, ResponseHead } from '../pipeline/types.js';
import type { ListenerTls } from './listener-tls.js';
import type { CertSource } from './source.js';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
const HOST = /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/;

export class TlsEdge implements Filter {
  readonly name = 'tls_edge';
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

  earlyRequest(ctx: RequestContext): LocalResponse | undefined {
    if (this.tls !== undefined) return undefined;
    const url = ctx.target;
    // Never redirected: a CA fetches HTTP-01 answers over plain HTTP (RFC 8555 §8.3); a token
    // usher does not hold may belong to another ACME client behind it, so it is routed.
    if (url.startsWith(CHALLENGE_PREFIX)) return this.challenge(url);
    if (this.redirectPort !== undefined) return redirect(ctx, this.redirectPort);
    return undefined;
  }

  response(_ctx: RequestContext, head: ResponseHead): void {
    // RFC 6797 §7.2: only over secure transport. An upstream's own value is kept.
    const hsts = this.tls?.config.hsts ?? null;
    if (hsts === null) return;
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i]!.length === 25 && h[i]!.toLowerCase() === 'strict-transport-security') return;
    h.push('strict-transport-security', hsts);
  }

  explain(): string {
    return this.tls !== undefined ? 'tls_edge (HSTS)' : `tls_edge (ACME HTTP-01${this.redirectPort !== undefined ? `, redirect to https port ${this.redirectPort}` : ''})`;
  }

  /** RFC 8555 §8.3: the key authorization as application/octet-stream, over plain HTTP. */
  private challenge(url: string): LocalResponse | undefined {
    const token = url.slice(CHALLENGE_PREFIX.length).split('?')[0]!;
    const answer = this.source?.httpChallenge(token);
    if (answer === undefined) return undefined;
    return { status: 200, headers: ['content-type', 'application/octet-stream', 'content-length', String(Buffer.byteLength(answer))], body: answer };
  }
}

/** 308 keeps the method and body (RFC 9110 §15.4.9), unlike 301. */
function redirect(ctx: RequestContext, port: number): LocalResponse | undefined {
  const host = ctx.header('host');
  // Without a usable Host there is nowhere to send the client: the request goes on (and is routed).
  if (host === undefined || !HOST.test(host)) return undefined;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  const url = ctx.target;
  const target = `https://${name}${port === 443 ? '' : `:${port}`}${url.startsWith('/') ? url : '/'}`;
  return { status: 308, headers: ['location', target, 'content-type', 'text/plain; charset=utf-8', 'content-length', '0'] };
}
