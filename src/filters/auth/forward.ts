// `auth: { forward }` — forward auth: before the request goes on, a subrequest asks an auth
// service (Traefik's forwardAuth, Caddy's forward_auth, nginx's auth_request). The subrequest
// is a GET with the client's headers (or the configured ones) and X-Forwarded-Method, -Proto,
// -Host, -Uri and -For; it goes through undici — its global agent for a `url`, the named
// upstream's own pool (servers, balancing, TLS settings) for an `upstream`. A 2xx lets the
// request go on, with `response_headers` copied onto it in upstream_request; any other answer
// is relayed as the service sent it; a timeout is 504 auth_timeout, anything else that keeps
// an answer from coming 503 auth_unavailable. Allowing answers may be reused for `cache.ttl`,
// keyed by the values of `cache.key` headers; denials never are (they may depend on the URI).
import { request as undiciRequest, type Dispatcher } from 'undici';
import type { RouteFilterDeps } from '../../pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse, type RequestBodyHook, type RequestContext, type RequestHookResult, type UpstreamRequestHead } from '../../pipeline/types.js';
import type { Cluster } from '../../upstream/cluster.js';
import { NOT_FORWARDED, type ForwardAuthConfig } from './forward-config.js';
import { flatHeaders, removeFields } from '../../util/fields.js';
import { challenge } from './replies.js';

/** The largest denial body relayed; a larger one is cut off and the service counted as failing. */
const MAX_BODY = 256 * 1024;
const MAX_CACHED = 10_000;
/** Not relayed from a denial: hop-by-hop and framing (usher frames the reply by its body). */
const NOT_RELAYED: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);

/** The headers to copy onto the upstream request, from the allowing answer. */
const kAllowed = stateKey<readonly string[]>('auth.forward.headers');

class Timeout extends Error {}
class TooLarge extends Error {}

type Answer = { allowed: true; headers: readonly string[] } | { allowed: false; reply: LocalResponse };

export class ForwardAuth implements Filter {
  readonly name = 'auth_forward';
  private readonly only: ReadonlySet<string> | undefined;
  private readonly copy: ReadonlySet<string>;
  private readonly cached = new Map<string, { until: number; headers: readonly string[] }>();
  /** With `body`: the service is asked here, once the body is read (a request with none is asked in `request`). */
  readonly requestBody: RequestBodyHook | undefined;

  constructor(
    private readonly config: ForwardAuthConfig,
    private readonly cluster: Cluster | undefined,
  ) {
    this.only = config.request_headers === undefined ? undefined : new Set(config.request_headers);
    this.copy = new Set(config.response_headers);
    const max = config.body;
    this.requestBody = max === undefined ? undefined : { maxBytes: max, inspect: (ctx, body) => this.decide(ctx, body) };
  }

  request(ctx: RequestContext): Promise<LocalResponse | undefined> | undefined {
    // With `body`, a request with a body is asked in request_body; upstream_request asks any the
    // body phase did not (it runs only for a body usher saw), so none goes on unasked.
    if (this.requestBody !== undefined && mayHaveBody(ctx)) return undefined;
    return this.decide(ctx);
  }

  /** Asks the service (or the cache): undefined to go on, or the reply. */
  private decide(ctx: RequestContext, body?: Buffer): Promise<LocalResponse | undefined> | undefined {
    // `usher explain` asks nothing of the service.
    if (ctx.explaining) return undefined;
    const key = this.config.cache === undefined ? undefined : this.cacheKey(ctx);
    if (key !== undefined) {
      const hit = this.cached.get(key);
      if (hit !== undefined) {
        if (hit.until > performance.now()) {
          ctx.set(kAllowed, hit.headers);
          return undefined;
        }
        this.cached.delete(key);
      }
    }
    return this.ask(ctx, body).then(
      (a) => {
        if (!a.allowed) return a.reply;
        ctx.set(kAllowed, a.headers);
        if (key !== undefined) {
          if (this.cached.size >= MAX_CACHED) this.cached.delete(this.cached.keys().next().value!);
          this.cached.set(key, { until: performance.now() + this.config.cache!.ttl, headers: a.headers });
        }
        return undefined;
      },
      (err: unknown) => challenge(ctx, err instanceof Timeout ? 'auth_timeout' : 'auth_unavailable', undefined),
    );
  }

  private cacheKey(ctx: RequestContext): string {
    let k = '';
    for (const h of this.config.cache!.key) k += `${ctx.header(h) ?? ''}\0`;
    return k;
  }

  /** The subrequest and what it answered. */
  private async ask(ctx: RequestContext, body: Buffer | undefined): Promise<Answer> {
    const headers = this.headersFor(ctx);
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new Timeout('the auth service did not answer in time'));
    }, this.config.timeout);
    try {
      const res = await this.dispatch(headers, body, abort.signal);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const answer = ok ? await drain(res.body) : await readBody(res.body);
      const flat = flatten(res.headers, ok ? this.copy : undefined);
      if (ok) return { allowed: true, headers: flat };
      // RFC 9110 §15: only a final status can be relayed (undici never gives 1xx here).
      return { allowed: false, reply: { status: res.statusCode, headers: flat, body: answer, reason: 'auth_denied' } };
    } catch (err) {
      throw timedOut ? new Timeout('timeout', { cause: err }) : err;
    } finally {
      clearTimeout(timer);
    }
  }

  private dispatch(headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const method = body === undefined ? 'GET' : 'POST';
    if (this.config.url !== undefined) return undiciRequest(this.config.url, { method, headers, body: body ?? null, signal });
    const endpoint = this.cluster?.pick({ attempt: 0 });
    if (endpoint === undefined) return Promise.reject(new Error('the auth upstream has no server available'));
    return endpoint.pool.request({ path: this.config.path, method, headers, body: body ?? null, signal });
  }

  private headersFor(ctx: RequestContext): Record<string, string> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    const h = ctx.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!.toLowerCase();
      if (this.only !== undefined ? !this.only.has(name) : NOT_FORWARDED.has(name)) continue;
      const v = h[i + 1]!;
      // Repeated fields joined (RFC 9110 §5.3); Cookie with "; " (RFC 6265 §5.4).
      out[name] = out[name] === undefined ? v : `${out[name]}${name === 'cookie' ? '; ' : ', '}${v}`;
    }
    const rr = ctx.request;
    out['x-forwarded-method'] = ctx.method;
    out['x-forwarded-proto'] = ctx.scheme;
    out['x-forwarded-host'] = ctx.header('host') ?? rr?.host ?? '';
    out['x-forwarded-uri'] = rr?.uri ?? ctx.target;
    out['x-forwarded-for'] = ctx.clientAddress;
    out['x-request-id'] = ctx.requestId;
    return out;
  }

  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): RequestHookResult {
    // With `body`: a request neither phase asked about (a body-less one `request` took for a
    // body) is asked now, without a body, rather than let through.
    if (this.requestBody !== undefined && ctx.get(kAllowed) === undefined && !ctx.explaining) {
      const r = this.decide(ctx);
      if (r !== undefined) return r.then((reply) => reply ?? this.edit(ctx, head));
    }
    this.edit(ctx, head);
    return undefined;
  }

  private edit(ctx: RequestContext, head: UpstreamRequestHead): undefined {
    // The client's copies of the headers the service vouches for go, allowed or not.
    if (this.copy.size > 0) removeFields(head.headers, this.copy);
    const add = ctx.get(kAllowed);
    if (add !== undefined) for (let i = 0; i < add.length; i++) head.headers.push(add[i]!);
    return undefined;
  }

  explain(): string {
    const c = this.config;
    const to = c.url ?? `upstream ${c.upstream}${c.path}`;
    const parts = [to, `timeout ${c.timeout} ms`];
    if (c.response_headers.length > 0) parts.push(`copies ${c.response_headers.join(', ')}`);
    if (c.body !== undefined) parts.push(`body up to ${c.body} bytes`);
    if (c.cache !== undefined) parts.push(`cache ${c.cache.ttl} ms by ${c.cache.key.join('+')}`);
    return `auth forward (${parts.join('; ')}; not asked under explain)`;
  }
}

/** Whether the request announces a body (as the exchange judges it for HTTP/1; an HTTP/2 one without Content-Length may have one). */
function mayHaveBody(ctx: RequestContext): boolean {
  const te = ctx.header('transfer-encoding');
  const cl = ctx.header('content-length');
  if (te !== undefined || (cl !== undefined && cl !== '0')) return true;
  return ctx.httpVersion === '2' && cl === undefined;
}

/** undici's response headers as flat pairs: only `only` when given, else all but NOT_RELAYED. */
function flatten(headers: Dispatcher.ResponseData['headers'], only: ReadonlySet<string> | undefined): string[] {
  return flatHeaders(headers, (name) => (only !== undefined ? !only.has(name) : NOT_RELAYED.has(name)));
}

async function readBody(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) {
      body.destroy();
      throw new TooLarge(`the auth service's answer is over ${MAX_BODY} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function drain(body: Dispatcher.ResponseData['body']): Promise<undefined> {
  await body.dump({ limit: MAX_BODY });
  return undefined;
}

export function forwardAuth(config: ForwardAuthConfig, deps: RouteFilterDeps): ForwardAuth {
  return new ForwardAuth(config, config.upstream === undefined ? undefined : deps.clusters.get(config.upstream));
}
