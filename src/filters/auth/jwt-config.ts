// `auth: { jwt: ... }` — bearer JWTs (RFC 7519, RFC 6750) verified with jose: the schema part,
// defaults, normalised type, normaliser and check. Keys are inline (a secret, a PEM public key
// or a JWK/JWKS), from a file read when the config is loaded (so re-read on reload), or from a
// JWKS URL fetched at run time. The algorithms a key accepts are fixed here, at load, never
// taken from the token: "none" is never one of them, and a secret never meets an RS/ES token.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type ErrorFn, type Rec, type RouteCheckContext } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { duration, headerName, object, PATH_EXPECTED, PATH_PATTERN, stringEnum } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';
import { checkRealm } from './basic-config.js';

export const JWT_DEFAULTS = { realm: 'usher', leeway: '0s', cache: '1m', forward_authorization: false, jwks: { cache: '10m', cooldown: '30s', timeout: '5s' } } as const;

export const HMAC_ALGS = ['HS256', 'HS384', 'HS512'] as const;
const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
const EC_ALGS: Readonly<Record<string, string>> = { 'prime256v1': 'ES256', 'P-256': 'ES256', 'secp384r1': 'ES384', 'P-384': 'ES384', 'secp521r1': 'ES512', 'P-521': 'ES512' };
const OKP_ALGS = ['EdDSA', 'Ed25519'] as const;
export const ASYMMETRIC_ALGS = [...RSA_ALGS, 'ES256', 'ES384', 'ES512', ...OKP_ALGS] as const;
const ALL_ALGS = [...HMAC_ALGS, ...ASYMMETRIC_ALGS] as const;
/** RFC 7518 §3.2: an HMAC key at least as long as the hash. */
const MIN_SECRET: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 };

const ClaimValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

export const JwksSchema = object(
  {
    url: Type.Optional(
      Type.String({ pattern: '^https?://', description: 'Where the JSON Web Key Set is (http:// or https://; https is verified against Node\'s roots and NODE_EXTRA_CA_CERTS). Or `upstream`.', 'x-usher-expected': 'an http:// or https:// URL' }),
    ),
    upstream: Type.Optional(
      Type.String({ minLength: 1, description: 'An upstream (under `upstreams`) that serves the key set, fetched through its pool with its TLS settings (`ca`, client certificate, `servername`). With `path`.' }),
    ),
    path: Type.Optional(Type.String({ pattern: PATH_PATTERN, description: 'With `upstream`: the path of the key set ("/.well-known/jwks.json").', 'x-usher-expected': PATH_EXPECTED })),
    cache: Type.Optional(duration('How long a fetched key set is used before it is fetched again.', JWT_DEFAULTS.jwks.cache)),
    cooldown: Type.Optional(duration('A token whose `kid` is not in the set makes usher fetch it again (a rotated key), but at most once per `cooldown`.', JWT_DEFAULTS.jwks.cooldown)),
    timeout: Type.Optional(duration('Longest a fetch may take; a request waiting for it then gets 503 auth_unavailable.', JWT_DEFAULTS.jwks.timeout)),
  },
  { description: 'A remote JSON Web Key Set (RFC 7517 §5), fetched on the first request that needs it, cached, and fetched again on an unknown key id (rate-limited by `cooldown`).' },
);

export const JwtAuthSchema = object(
  {
    secret: Type.Optional(Type.String({ minLength: 1, description: 'An HMAC secret (HS256/384/512), as UTF-8 text; write `${JWT_SECRET}` to take it from the environment. At least as long as the hash (32 bytes for HS256).' })),
    key: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Record(Type.String(), Type.Unknown(), { additionalProperties: false })], {
        description: 'A public key: PEM text (SPKI "BEGIN PUBLIC KEY", or a certificate), a JWK object, or a JWK Set object ({ keys: [...] }: the token\'s `kid` picks one).',
        'x-usher-expected': 'PEM text or a JWK / JWK Set object',
      }),
    ),
    key_file: Type.Optional(Type.String({ minLength: 1, description: 'A file holding what `key` holds (PEM, a JWK or a JWK Set as JSON), relative to the config file; read when the config is loaded and on every reload.' })),
    jwks: Type.Optional(JwksSchema),
    algorithms: Type.Optional(
      Type.Array(stringEnum(ALL_ALGS, { description: 'A JWS algorithm.' }), {
        minItems: 1,
        description: 'The algorithms accepted ("alg" of the token). Default: those of the key (for a secret, the HS ones it is long enough for: HS256 from 32 bytes, HS384 from 48, HS512 from 64; RS*/PS* for RSA; the ES* of the curve; EdDSA for Ed25519; every asymmetric one for a key set). "none" is never accepted.',
      }),
    ),
    issuer: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: 'The "iss" the token must have (one of these).' })),
    audience: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: 'An "aud" the token must name (one of these).' })),
    leeway: Type.Optional(duration('Clock skew allowed when checking "exp" and "nbf".', JWT_DEFAULTS.leeway)),
    require: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.Union([Type.Literal(true), ClaimValue, Type.Array(ClaimValue, { minItems: 1 })]), {
        additionalProperties: false,
        description:
          'Claims the token must carry: `true` (present, any value), a value (equal to it; or, for a list claim or a space-separated one such as "scope", containing it), or a list of values (containing every one). A token without them: 403 auth_forbidden (insufficient_scope).',
        'x-usher-key': 'claim name',
      }),
    ),
    cookie: Type.Optional(Type.String({ minLength: 1, description: 'Also take the token from this cookie when the request has no `Authorization: Bearer`.' })),
    claims_to_headers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), headerName('The request header that carries the claim upstream.'), {
        additionalProperties: false,
        description: 'Claims copied onto the upstream request: claim name: header name ({ sub: x-user-id }). Any copy of these headers the client sent is removed first; a claim that is absent sends no header. Lists are joined with ", ", objects sent as JSON.',
        'x-usher-key': 'claim name',
      }),
    ),
    forward_authorization: Type.Optional(Type.Boolean({ default: JWT_DEFAULTS.forward_authorization, description: 'Send the client\'s Authorization field (the token) upstream; by default usher removes it.' })),
    realm: Type.Optional(Type.String({ minLength: 1, default: JWT_DEFAULTS.realm, description: 'The realm in `WWW-Authenticate: Bearer realm="..."`.' })),
    cache: Type.Optional(
      duration(
        'How long a verified token is remembered (in this process, never past its "exp"), so that the signature is checked once per token rather than per request. 0 disables it. A reload forgets everything.',
        JWT_DEFAULTS.cache,
      ),
    ),
  },
  {
    description:
      'Bearer JWTs (RFC 7519) verified with jose: one of `secret`, `key`, `key_file` or `jwks`; "iss", "aud", "exp" and "nbf" checked. Without a token: 401 auth_required; a token that does not verify: 401 auth_invalid, with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3); missing required claims: 403 auth_forbidden. The verified claims can key rate limits (`{ jwt_claim: name }`).',
  },
);

export type JwtAuthInput = Static<typeof JwtAuthSchema>;

export type JwtKey =
  | { kind: 'secret'; secret: string }
  /** A PEM public key or certificate. */
  | { kind: 'pem'; pem: string }
  | { kind: 'jwk'; jwk: Record<string, unknown> }
  | { kind: 'jwks'; jwks: { keys: Record<string, unknown>[] } }
  /** `url`, or `upstream` with `path`. */
  | { kind: 'remote'; url?: string; upstream?: string; path?: string; cache: number; cooldown: number; timeout: number };

export type ClaimRequirement = true | (string | number | boolean)[];

export interface JwtAuthConfig {
  key: JwtKey;
  algorithms: string[];
  issuer?: string[];
  audience?: string[];
  /** Seconds. */
  leeway: number;
  /** [claim, requirement]: true (present) or values all to be present. */
  require: [string, ClaimRequirement][];
  cookie?: string;
  /** [claim, lower-case header]. */
  claims_to_headers: [string, string][];
  forward_authorization: boolean;
  realm: string;
  /** ms; 0: no cache. */
  cache: number;
}

const asList = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

/** A key as written (text or object, from `key` or a file) → JwtKey. */
function parseKey(k: string | Record<string, unknown>): JwtKey {
  if (typeof k === 'string') {
    const t = k.trim();
    if (!t.startsWith('{')) return { kind: 'pem', pem: t };
    k = JSON.parse(t) as Record<string, unknown>;
  }
  if (Array.isArray(k.keys)) return { kind: 'jwks', jwks: { keys: k.keys as Record<string, unknown>[] } };
  return { kind: 'jwk', jwk: k };
}

export function normalizeJwt(j: JwtAuthInput, filePath: (p: string) => string): JwtAuthConfig {
  let key: JwtKey;
  if (j.secret !== undefined) key = { kind: 'secret', secret: j.secret };
  else if (j.key !== undefined) key = parseKey(j.key);
  else if (j.key_file !== undefined) key = parseKey(readFileSync(filePath(j.key_file), 'utf8'));
  else {
    const r = j.jwks!;
    const d = JWT_DEFAULTS.jwks;
    const remote: JwtKey = { kind: 'remote', cache: parseDuration(r.cache ?? d.cache), cooldown: parseDuration(r.cooldown ?? d.cooldown), timeout: parseDuration(r.timeout ?? d.timeout) };
    if (r.url !== undefined) remote.url = r.url;
    if (r.upstream !== undefined) remote.upstream = r.upstream;
    if (r.path !== undefined) remote.path = r.path;
    key = remote;
  }
  const out: JwtAuthConfig = {
    key,
    algorithms: j.algorithms ?? algorithmsOf(key),
    leeway: Math.floor(parseDuration(j.leeway ?? JWT_DEFAULTS.leeway) / 1000),
    require: Object.entries(j.require ?? {}).map(([c, v]): [string, ClaimRequirement] => [c, v === true ? true : Array.isArray(v) ? v : [v]]),
    claims_to_headers: Object.entries(j.claims_to_headers ?? {}).map(([c, h]): [string, string] => [c, h.toLowerCase()]),
    forward_authorization: j.forward_authorization ?? JWT_DEFAULTS.forward_authorization,
    realm: j.realm ?? JWT_DEFAULTS.realm,
    cache: parseDuration(j.cache ?? JWT_DEFAULTS.cache),
  };
  const issuer = asList(j.issuer);
  if (issuer !== undefined) out.issuer = issuer;
  const audience = asList(j.audience);
  if (audience !== undefined) out.audience = audience;
  if (j.cookie !== undefined) out.cookie = j.cookie;
  return out;
}

/** The algorithms a key can verify. */
function algorithmsOf(key: JwtKey): string[] {
  switch (key.kind) {
    case 'secret': {
      // The HS algorithms the secret is long enough for (RFC 7518 §3.2).
      const bytes = Buffer.byteLength(key.secret);
      return HMAC_ALGS.filter((a) => bytes >= MIN_SECRET[a]!);
    }
    case 'remote':
    case 'jwks':
      return [...ASYMMETRIC_ALGS];
    case 'jwk':
      if (key.jwk.kty === 'oct') return [...HMAC_ALGS];
      return algorithmsOfKeyObject(createPublicKey({ key: key.jwk as never, format: 'jwk' }));
    case 'pem':
      return algorithmsOfKeyObject(createPublicKey(key.pem));
  }
}

function algorithmsOfKeyObject(k: KeyObject): string[] {
  switch (k.asymmetricKeyType) {
    case 'rsa':
      return [...RSA_ALGS];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const alg = EC_ALGS[k.asymmetricKeyDetails?.namedCurve ?? ''];
      return alg === undefined ? [] : [alg];
    }
    case 'ed25519':
      return [...OKP_ALGS];
    default:
      return [];
  }
}

const KEY_SOURCES = ['secret', 'key', 'key_file', 'jwks'] as const;

export function checkJwt(j: unknown, at: Segment[], ctx: RouteCheckContext): void {
  if (!isRec(j)) return;
  const { error, resolve } = ctx;
  if (isRec(j.jwks)) checkJwks(j.jwks, [...at, 'jwks'], ctx);
  const sources = KEY_SOURCES.filter((k) => j[k] !== undefined);
  if (sources.length === 0) error(at, 'JWT auth needs a key: one of "secret", "key", "key_file" or "jwks"');
  if (sources.length > 1) error([...at, sources[1]!], `JWT auth takes one key source, found ${sources.map((s) => `"${s}"`).join(' and ')}`, 'keep one (a JWK Set holds several keys)', 'key');
  checkRealm(j.realm, [...at, 'realm'], error);
  if (sources.length !== 1) return;
  const source = sources[0]!;
  let key: JwtKey | undefined;
  let keyAt: Segment[] = [...at, source];
  if (source === 'secret' && typeof j.secret === 'string') key = { kind: 'secret', secret: j.secret };
  else if (source === 'key' && (typeof j.key === 'string' || isRec(j.key))) key = readKey(j.key, keyAt, error);
  else if (source === 'key_file' && typeof j.key_file === 'string') {
    let text: string | undefined;
    try {
      text = readFileSync(resolve(j.key_file), 'utf8');
    } catch (err) {
      error(keyAt, `cannot read ${JSON.stringify(j.key_file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (text !== undefined) key = readKey(text, keyAt, error, j.key_file);
  } else if (source === 'jwks' && isRec(j.jwks)) key = { kind: 'remote', cache: 0, cooldown: 0, timeout: 0 };
  if (key === undefined) return;
  let usable: string[];
  try {
    usable = key.kind === 'secret' ? [...HMAC_ALGS] : key.kind === 'jwks' ? [...ASYMMETRIC_ALGS, ...(key.jwks.keys.some((k) => k.kty === 'oct') ? HMAC_ALGS : [])] : algorithmsOf(key);
  } catch (err) {
    return error(keyAt, `cannot use this key: ${(err as Error).message}`, 'a public key as PEM (SPKI or a certificate) or a JWK');
  }
  if (usable.length === 0) return error(keyAt, 'this key type has no JWS algorithm (RSA, EC P-256/384/521, Ed25519 or an HMAC secret)');
  const algs = list(j.algorithms).filter((a): a is string => typeof a === 'string' && a !== 'none');
  const wrong = algs.filter((a) => !usable.includes(a));
  if (wrong.length > 0) {
    keyAt = [...at, 'algorithms'];
    error(keyAt, `${wrong.join(', ')} cannot be verified with this key`, `this key verifies ${usable.join(', ')}`);
  }
  if (key.kind === 'secret') {
    const bytes = Buffer.byteLength(key.secret);
    const need = Math.max(...algs.filter((a) => a in MIN_SECRET).map((a) => MIN_SECRET[a]!), 32);
    if (bytes < need) error([...at, 'secret'], `the secret has ${bytes} bytes; HMAC keys need at least ${need} (RFC 7518 §3.2: as long as the hash)`, 'use a long random secret, e.g. `openssl rand -base64 48`');
  }
  checkClaims(j, at, error);
}

/** `url`, or `upstream` with `path`. */
function checkJwks(k: Rec, at: Segment[], { error, upstream }: RouteCheckContext): void {
  if (k.url === undefined && k.upstream === undefined) error(at, 'a JWKS needs "url" or "upstream" (with "path")');
  if (k.url !== undefined && k.upstream !== undefined) error([...at, 'upstream'], 'a JWKS takes "url" or "upstream", not both', undefined, 'key');
  if (k.upstream !== undefined && k.url === undefined && k.path === undefined) error(at, '"upstream" needs "path": where the upstream serves the key set');
  if (k.path !== undefined && k.upstream === undefined) error([...at, 'path'], '"path" goes with "upstream" (a "url" has its own path)', undefined, 'key');
  if (k.upstream !== undefined) upstream(k.upstream, [...at, 'upstream']);
}

/** A key from `key` or a file: PEM, or JSON holding a JWK or a JWK Set. */
function readKey(k: string | Rec, at: Segment[], error: ErrorFn, file?: string): JwtKey | undefined {
  const where = file === undefined ? '' : `${file}: `;
  let key: JwtKey;
  try {
    key = parseKey(k);
  } catch (err) {
    error(at, `${where}invalid JSON: ${(err as Error).message}`);
    return undefined;
  }
  if (key.kind === 'pem' && !key.pem.startsWith('-----BEGIN ')) {
    error(at, `${where}expected a PEM public key ("-----BEGIN PUBLIC KEY-----"), a JWK or a JWK Set`);
    return undefined;
  }
  if (key.kind === 'pem' && /PRIVATE KEY/.test(key.pem.split('\n')[0]!)) {
    error(at, `${where}this is a private key: give usher the public key only`, 'openssl pkey -in key.pem -pubout');
    return undefined;
  }
  if (key.kind === 'jwk' && typeof key.jwk.d === 'string') {
    error(at, `${where}this JWK holds a private key ("d"): give usher the public key only`);
    return undefined;
  }
  if (key.kind === 'jwks') {
    if (key.jwks.keys.length === 0) {
      error(at, `${where}the JWK Set has no keys`);
      return undefined;
    }
    for (const [i, jwk] of key.jwks.keys.entries()) {
      if (!isRec(jwk) || typeof jwk.kty !== 'string') {
        error(at, `${where}keys[${i}] is not a JWK (no "kty")`);
        return undefined;
      }
      if (jwk.kty === 'oct') continue;
      try {
        createPublicKey({ key: jwk as never, format: 'jwk' });
      } catch (err) {
        error(at, `${where}keys[${i}]: cannot use this key: ${(err as Error).message}`);
        return undefined;
      }
    }
  }
  return key;
}

function checkClaims(j: Rec, at: Segment[], error: ErrorFn): void {
  if (!isRec(j.claims_to_headers)) return;
  const seen = new Map<string, string>();
  for (const [claim, header] of Object.entries(j.claims_to_headers)) {
    if (typeof header !== 'string') continue;
    const h = header.toLowerCase();
    if (h === 'authorization' || h === 'host' || h === 'content-length' || h === 'transfer-encoding' || h === 'cookie') {
      error([...at, 'claims_to_headers', claim], `${JSON.stringify(header)} cannot carry a claim: usher or the client needs it as it is`, 'use a header of your own, such as x-user-id');
    }
    const first = seen.get(h);
    if (first !== undefined) error([...at, 'claims_to_headers', claim], `header ${JSON.stringify(header)} already carries claim ${JSON.stringify(first)}`);
    else seen.set(h, claim);
  }
}
