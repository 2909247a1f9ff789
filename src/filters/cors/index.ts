// `cors:` — the CORS protocol of the Fetch standard (https://fetch.spec.whatwg.org/#http-cors-protocol)
// on a route. request phase: a preflight (OPTIONS with Origin and Access-Control-Request-Method,
// Fetch §3.2.2) is answered here and never proxied. response phase: every other head going
// downstream — proxied, or a local reply such as a 502 or an access denial — gets the
// Access-Control-* fields for its origin; the upstream's own are replaced, so that the answer
// is usher's alone (as Traefik's and Caddy's CORS handlers do).
//
// Rules from Fetch: with credentials the origin is reflected, never "*" (§3.2.5); a response
// whose fields depend on Origin says `Vary: Origin` (§3.2.6: also when this one has none, so a
// cache does not hand a response without them to an allowed origin, or one made for origin A to
// origin B). With `origins: "*"` and no credentials the fields do not depend on the origin: "*"
// on every response, no Vary.
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse, type RequestContext, type ResponseHead } from '../../pipeline/types.js';
import { localReplyFor, wantsJson } from '../../proxy/local-reply.js';
import type { CorsConfig } from './config.js';

/** Set on a preflight this filter answered: its reply already carries the fields. */
const kPreflight = stateKey<true>('cors.preflight');

/** Methods a simple request may use without a preflight (Fetch: CORS-safelisted methods). */
const SAFELISTED = new Set(['GET', 'HEAD', 'POST']);

export class Cors implements Filter {
  readonly name = 'cors';
  private readonly anyOrigin: boolean;
  private readonly exact: ReadonlySet<string>;
  private readonly patterns: readonly RegExp[];
  private readonly anyMethod: boolean;
  private readonly methods: ReadonlySet<string>;
  private readonly anyHeader: boolean;
  private readonly headers: ReadonlySet<string>;
  private readonly allowMethods: string;
  private readonly allowHeaders: string;
  private readonly expose: string;

  constructor(private readonly config: CorsConfig) {
    this.anyOrigin = config.origins === '*';
    const origins = config.origins === '*' ? [] : config.origins;
    this.exact = new Set(origins.filter((o) => !o.includes('://*.')));
    this.patterns = origins.filter((o) => o.includes('://*.')).map(patternRegex);
    this.anyMethod = config.methods.includes('*');
    this.methods = new Set(config.methods);
    this.anyHeader = config.headers.includes('*');
    this.headers = new Set(config.headers);
    this.allowMethods = config.methods.join(', ');
    this.allowHeaders = config.headers.join(', ');
    this.expose = config.expose_headers.join(', ');
  }

  /** Whether `origin` (the Origin field as sent) may read this route's responses. */
  allows(origin: string): boolean {
    if (this.anyOrigin) return true;
    const o = origin.toLowerCase();
    if (this.exact.has(o)) return true;
    for (const p of this.patterns) if (p.test(o)) return true;
    return false;
  }

  request(ctx: RequestContext): LocalResponse | undefined {
    if (ctx.method !== 'OPTIONS') return undefined;
    const origin = ctx.header('origin');
    const method = ctx.header('access-control-request-method');
    if (origin === undefined || method === undefined) return undefined; // an ordinary OPTIONS: proxied
    ctx.set(kPreflight, true);
    const requested = ctx.header('access-control-request-headers');
    const asked = requested === undefined ? [] : requested.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
    const vary = this.anyMethod || this.anyHeader ? 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' : 'Origin';
    const methodOk = this.anyMethod || SAFELISTED.has(method) || this.methods.has(method.toUpperCase());
    const headersOk = this.anyHeader || asked.every((h) => this.headers.has(h));
    if (!this.allows(origin) || !methodOk || !headersOk) {
      // Refused: no allow fields (the browser then fails the request), and said so in the logs.
      const r = localReplyFor('cors_preflight_refused', ctx.requestId, wantsJson(ctx.headers));
      return { ...r, headers: [...r.headers, 'vary', vary], reason: 'cors_preflight_refused' };
    }
    const h: string[] = ['access-control-allow-origin', this.anyOrigin && !this.config.credentials ? '*' : origin];
    if (this.config.credentials) h.push('access-control-allow-credentials', 'true');
    // Fetch §3.2.3: the methods and headers as a list; "*" is reflected, which also works with credentials.
    const methods = this.anyMethod ? method : this.methods.has(method) || SAFELISTED.has(method) ? this.allowMethods : `${this.allowMethods}, ${method}`;
    h.push('access-control-allow-methods', methods);
    const headers = this.anyHeader ? asked.join(', ') : this.allowHeaders;
    if (headers !== '') h.push('access-control-allow-headers', headers);
    h.push('access-control-max-age', String(this.config.max_age));
    if (!this.anyOrigin || this.anyMethod || this.anyHeader) h.push('vary', vary);
    h.push('content-length', '0');
    return { status: 204, headers: h, reason: 'cors_preflight' };
  }

  response(ctx: RequestContext, head: ResponseHead): void {
    if (ctx.get(kPreflight) === true) return;
    const h = head.headers;
    removeAccessControl(h);
    const origin = ctx.header('origin');
    if (this.anyOrigin && !this.config.credentials) {
      h.push('access-control-allow-origin', '*');
      if (this.expose !== '') h.push('access-control-expose-headers', this.expose);
      return;
    }
    addVaryOrigin(h);
    if (origin === undefined || !this.allows(origin)) return;
    h.push('access-control-allow-origin', origin);
    if (this.config.credentials) h.push('access-control-allow-credentials', 'true');
    if (this.expose !== '') h.push('access-control-expose-headers', this.expose);
  }

  explain(): string {
    const c = this.config;
    const origins = c.origins === '*' ? 'any origin' : c.origins.join(' ');
    return `cors (${origins}; ${c.methods.join(',')}${c.credentials ? '; credentials' : ''})`;
  }
}

/** "https://*.example.com" → any subdomain of example.com over https (not example.com itself). */
function patternRegex(p: string): RegExp {
  const [scheme, rest] = p.split('://*.') as [string, string];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(scheme)}://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\\.${esc(rest)}$`);
}

/** The upstream's Access-Control-* response fields: the route's CORS answer replaces them. */
function removeAccessControl(h: string[]): void {
  for (let i = h.length - 2; i >= 0; i -= 2) {
    const n = h[i]!;
    if (n.length > 15 && (n.charCodeAt(0) | 32) === 97 /* a */ && n.slice(0, 15).toLowerCase() === 'access-control-') h.splice(i, 2);
  }
}

/** Adds Origin to Vary unless it is there already (or Vary is "*"). */
function addVaryOrigin(h: string[]): void {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i]!.length !== 4 || h[i]!.toLowerCase() !== 'vary') continue;
    const v = h[i + 1]!;
    for (const t of v.split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok === 'origin' || tok === '*') return;
    }
    h[i + 1] = v.trim() === '' ? 'Origin' : `${v}, Origin`;
    return;
  }
  h.push('vary', 'Origin');
}

export const cors: RouteFilterDefinition = {
  name: 'cors',
  create: (rc: RouteConfig) => (rc.cors === undefined ? undefined : new Cors(rc.cors)),
};
