// `auth: { jwt }` — bearer JWTs verified with jose (the maintained JOSE library of the field:
// every JWS algorithm, JWKS with caching and a refetch cooldown, claim checks; no dependencies).
//
// The token comes from `Authorization: Bearer` (RFC 6750 §2.1), else from a configured cookie.
// jose checks the signature with the configured key and only the configured algorithms ("none"
// is refused by jose outright), then iss, aud, exp and nbf (with `leeway`); usher then checks
// the required claims. Verifying takes about 100 µs even for HS256 (WebCrypto's async round
// trip), so a verified token is remembered for `cache` (never past its exp): a request with a
// known token costs one Map lookup. The claims go into the request's state (claims.ts) for the
// rate-limit key, and the chosen ones onto the upstream request in upstream_request.
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, jwtVerify, type FetchImplementation, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { Cluster } from '../../upstream/cluster.js';
import type { Filter, LocalResponse, RequestContext, UpstreamRequestHead } from '../../pipeline/types.js';
import { safeFieldValue } from '../template.js';
import { quoted } from './basic-config.js';
import { claimText, JWT_CLAIMS, type Claims } from './claims.js';
import type { ClaimRequirement, JwtAuthConfig, JwtKey } from './jwt-config.js';
import { removeFields } from '../../util/fields.js';
import { challenge, credentialsOf } from './replies.js';

const MAX_CACHED = 10_000;
/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

interface Verified {
  readonly claims: Claims;
  /** performance.now() ms after which the entry is not used. */
  readonly until: number;
}

type Key = KeyObject | JWTVerifyGetKey;

export class JwtAuth implements Filter {
  readonly name = 'auth_jwt';
  private readonly key: Key;
  private readonly options: JWTVerifyOptions;
  private readonly bearer: string;
  /** Header names the filter removes from the upstream request (claim headers; Authorization unless forwarded). */
  private readonly strip: ReadonlySet<string>;
  private readonly verified = new Map<string, Verified>();

  /** `cluster`: the upstream serving the JWKS, when it is fetched through one. */
  constructor(
    private readonly config: JwtAuthConfig,
    cluster?: Cluster,
  ) {
    this.key = keyOf(config.key, cluster);
    this.options = { algorithms: config.algorithms, clockTolerance: config.leeway };
    if (config.issuer !== undefined) this.options.issuer = config.issuer;
    if (config.audience !== undefined) this.options.audience = config.audience;
    this.bearer = `Bearer realm=${quoted(config.realm)}`;
    const strip = new Set(config.claims_to_headers.map(([, h]) => h));
    if (!config.forward_authorization) strip.add('authorization');
    this.strip = strip;
  }

  request(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    let token = credentialsOf(ctx.header('authorization'), 'bearer');
    if (token === null && this.config.cookie !== undefined) token = ctx.request?.cookie(this.config.cookie) ?? null;
    // RFC 6750 §3.1: a request without a token gets the challenge without an error code.
    if (token === null) return challenge(ctx, 'auth_required', this.bearer);
    // A token verified before: one lookup (its syntax was checked then).
    const hit = this.verified.get(token);
    if (hit !== undefined) {
      if (hit.until > performance.now()) {
        ctx.set(JWT_CLAIMS, hit.claims);
        return undefined;
      }
      this.verified.delete(token);
    }
    if (!B64TOKEN.test(token)) return challenge(ctx, 'auth_malformed', `${this.bearer}, error="invalid_request", error_description="the bearer token is not in token syntax"`);
    return this.verify(ctx, token);
  }

  private async verify(ctx: RequestContext, token: string): Promise<LocalResponse | undefined> {
    let payload: JWTPayload;
    try {
      payload = (await (typeof this.key === 'function' ? jwtVerify(token, this.key, this.options) : jwtVerify(token, this.key, this.options))).payload;
    } catch (err) {
      const why = describe(err);
      if (why === undefined) return challenge(ctx, 'auth_unavailable', undefined);
      return challenge(ctx, 'auth_invalid', `${this.bearer}, error="invalid_token", error_description="${why}"`);
    }
    const missing = this.config.require.find(([claim, req]) => !satisfies(payload[claim], req));
    if (missing !== undefined) {
      return challenge(ctx, 'auth_forbidden', `${this.bearer}, error="insufficient_scope", error_description="the token lacks the required claim ${missing[0].replace(/["\\]/g, '')}"`);
    }
    ctx.set(JWT_CLAIMS, payload);
    // `usher explain` stores nothing.
    if (this.config.cache > 0 && !ctx.explaining) {
      const now = performance.now();
      const exp = typeof payload.exp === 'number' ? now + (payload.exp + this.config.leeway) * 1000 - Date.now() : Infinity;
      if (this.verified.size >= MAX_CACHED) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, { claims: payload, until: Math.min(now + this.config.cache, exp) });
    }
    return undefined;
  }

  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): void {
    removeFields(head.headers, this.strip);
    const claims = ctx.get(JWT_CLAIMS);
    if (claims === undefined) return;
    for (const [claim, header] of this.config.claims_to_headers) {
      const v = claimText(claims[claim]);
      if (v !== undefined) head.headers.push(header, safeFieldValue(v));
    }
  }

  explain(): string {
    const c = this.config;
    const from = c.key.kind === 'remote' ? `JWKS ${c.key.url ?? `upstream ${c.key.upstream}${c.key.path}`}` : c.key.kind;
    const parts = [from, c.algorithms.join(',')];
    if (c.issuer !== undefined) parts.push(`iss ${c.issuer.join('|')}`);
    if (c.audience !== undefined) parts.push(`aud ${c.audience.join('|')}`);
    if (c.require.length > 0) parts.push(`requires ${c.require.map(([n]) => n).join(', ')}`);
    if (c.claims_to_headers.length > 0) parts.push(`claims → ${c.claims_to_headers.map(([, h]) => h).join(', ')}`);
    return `auth jwt (${parts.join('; ')})`;
  }
}

function keyOf(k: JwtKey, cluster: Cluster | undefined): Key {
  switch (k.kind) {
    case 'secret':
      return createSecretKey(Buffer.from(k.secret, 'utf8'));
    case 'pem':
      return createPublicKey(k.pem);
    case 'jwk':
      return k.jwk.kty === 'oct' ? createSecretKey(Buffer.from(String(k.jwk.k), 'base64url')) : createPublicKey({ key: k.jwk as never, format: 'jwk' });
    case 'jwks':
      return createLocalJWKSet(k.jwks as never);
    case 'remote': {
      // Lazy: nothing is fetched until a request needs a key (explain and validate fetch nothing).
      const options = { cacheMaxAge: k.cache, cooldownDuration: k.cooldown, timeoutDuration: k.timeout };
      if (k.url !== undefined) return createRemoteJWKSet(new URL(k.url), options);
      // Through the upstream's pool: the URL only names the set (jose's cache key); the path is asked of the upstream.
      return createRemoteJWKSet(new URL(k.path!, 'http://upstream.invalid'), { ...options, [customFetch]: upstreamFetch(cluster!) });
    }
  }
}

/** A fetch for jose that asks the path of a server of `cluster`, with the upstream's TLS settings and pool. */
function upstreamFetch(cluster: Cluster): FetchImplementation {
  return async (url, options) => {
    const endpoint = cluster.pick({ attempt: 0 });
    if (endpoint === undefined) throw new Error(`upstream "${cluster.name}" has no server available`);
    const u = new URL(url);
    const headers: Record<string, string> = {};
    options.headers.forEach((v, n) => (headers[n] = v));
    const res = await endpoint.pool.request({ path: u.pathname + u.search, method: 'GET', headers, signal: options.signal });
    const body = await res.body.arrayBuffer();
    const h = new Headers();
    for (const [n, v] of Object.entries(res.headers)) if (v !== undefined) for (const x of Array.isArray(v) ? v : [v]) h.append(n, x);
    // A null-body status (204, 304) takes no body in a Response; jose refuses anything but 200 anyway.
    return new Response([204, 205, 304].includes(res.statusCode) ? null : body, { status: res.statusCode, headers: h });
  };
}

/** error_description for a token jose refused (RFC 6750 §3: no '"' or '\'), or undefined when the keys could not be had. */
function describe(err: unknown): string | undefined {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return 'the token is not valid yet';
      if (e.claim === 'iss') return 'unexpected issuer';
      if (e.claim === 'aud') return 'unexpected audience';
      if (e.claim === 'iat') return 'the token was issued in the future';
      return `invalid claim ${String(e.claim).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '')}`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'the signature does not verify';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'the token algorithm is not accepted';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'no key matches the token';
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return undefined;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
      return 'the token is malformed';
    default:
      // A fetch of the key set that failed (connection refused, an HTTP error status): no key to judge with.
      return e.code === undefined || e.code === 'ERR_JOSE_GENERIC' ? undefined : 'the token does not verify';
  }
}

/** Whether a claim's value meets a requirement (jwt-config.ts). */
function satisfies(v: unknown, req: ClaimRequirement): boolean {
  if (v === undefined || v === null) return false;
  if (req === true) return true;
  const has = (want: string | number | boolean): boolean => {
    if (Array.isArray(v)) return v.includes(want);
    if (typeof v === 'string' && typeof want === 'string' && v !== want) return v.split(' ').includes(want); // "scope": space-separated (RFC 8693 §4.2)
    return v === want;
  };
  return req.every(has);
}
