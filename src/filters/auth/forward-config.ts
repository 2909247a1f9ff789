// `auth: { forward: ... }` — forward auth (Traefik's forwardAuth, Caddy's forward_auth, nginx's
// auth_request): the schema part, defaults, normalised type, normaliser and check.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type RouteCheckContext } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { duration, headerName, object, PATH_EXPECTED, PATH_PATTERN, size } from '../../config/schema-kit.js';
import { parseDuration, parseSize } from '../../config/units.js';

export const FORWARD_DEFAULTS = { path: '/', timeout: '5s', cache_ttl: '10s' } as const;

/** Never copied from the client to the auth service: hop-by-hop, framing, and what usher sets itself. */
export const NOT_FORWARDED: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-method', 'x-forwarded-uri', 'x-real-ip', 'forwarded',
]);

const names = (description: string) => Type.Array(headerName('A header name; case does not matter.'), { minItems: 1, description });

export const ForwardAuthSchema = object(
  {
    url: Type.Optional(Type.String({ pattern: '^https?://', description: 'The auth service: every request is first asked of it with GET to this URL. Or `upstream`.', 'x-usher-expected': 'an http:// or https:// URL' })),
    upstream: Type.Optional(Type.String({ minLength: 1, description: 'An upstream (under `upstreams`) that is the auth service: its servers, balancing, health, pool and TLS settings. With `path`.' })),
    path: Type.Optional(Type.String({ pattern: PATH_PATTERN, default: FORWARD_DEFAULTS.path, description: 'With `upstream`: the path asked (with its query, if any).', 'x-usher-expected': PATH_EXPECTED })),
    request_headers: Type.Optional(names('The client\'s request headers sent to the auth service. Default: all of them but hop-by-hop, framing and forwarding fields, as Traefik and Caddy do.')),
    response_headers: Type.Optional(
      names('Headers of a 2xx answer copied onto the request sent upstream (X-User, X-Groups...); any copy the client sent is removed first, whatever the answer.'),
    ),
    timeout: Type.Optional(duration('Longest the auth service may take to answer; then 504 auth_timeout.', FORWARD_DEFAULTS.timeout)),
    body: Type.Optional(
      size(
        'Send the request body to the auth service too (with POST; the method in X-Forwarded-Method), read whole up to this size before the service is asked; a larger body: 413 body_too_large. Absent: no body is sent (GET).',
        '64kb',
      ),
    ),
    cache: Type.Optional(
      object(
        {
          key: names('The request headers whose values identify a client to the auth service (Authorization, Cookie...).'),
          ttl: Type.Optional(duration('How long an allowing answer is reused.', FORWARD_DEFAULTS.cache_ttl)),
        },
        {
          description:
            'Reuse an allowing (2xx) answer for requests with the same values of `key` headers, in this process, for `ttl`: only for an auth service whose decision depends on nothing else (not on the method or URI). Denials are never reused.',
        },
      ),
    ),
  },
  {
    description:
      'Forward auth: each request is first asked of an auth service (GET, with the client\'s headers and X-Forwarded-Method, -Proto, -Host, -Uri and -For). A 2xx lets it go on, with `response_headers` copied onto it; any other answer is relayed to the client as the service sent it (status, headers, body up to 256 KiB), logged as auth_denied. The service not answering in `timeout`: 504 auth_timeout; unreachable: 503 auth_unavailable. The client\'s own Authorization and Cookie still go upstream.',
  },
);

export type ForwardAuthInput = Static<typeof ForwardAuthSchema>;

export interface ForwardAuthConfig {
  /** Exactly one of url / upstream. */
  url?: string;
  upstream?: string;
  path: string;
  /** Lower case; absent: all but NOT_FORWARDED. */
  request_headers?: string[];
  /** Lower case. */
  response_headers: string[];
  timeout: number; // ms
  /** Bytes of request body read and sent to the service (POST); absent: none (GET). */
  body?: number;
  cache?: { key: string[]; ttl: number };
}

export function normalizeForward(f: ForwardAuthInput): ForwardAuthConfig {
  const out: ForwardAuthConfig = {
    path: f.path ?? FORWARD_DEFAULTS.path,
    response_headers: (f.response_headers ?? []).map((h) => h.toLowerCase()),
    timeout: parseDuration(f.timeout ?? FORWARD_DEFAULTS.timeout),
  };
  if (f.url !== undefined) out.url = f.url;
  if (f.upstream !== undefined) out.upstream = f.upstream;
  if (f.request_headers !== undefined) out.request_headers = f.request_headers.map((h) => h.toLowerCase());
  if (f.body !== undefined) out.body = parseSize(f.body);
  if (f.cache !== undefined) out.cache = { key: f.cache.key.map((h) => h.toLowerCase()), ttl: parseDuration(f.cache.ttl ?? FORWARD_DEFAULTS.cache_ttl) };
  return out;
}

export function checkForward(f: unknown, at: Segment[], ctx: RouteCheckContext): void {
  if (!isRec(f)) return;
  const { error } = ctx;
  if (f.url === undefined && f.upstream === undefined) error(at, 'forward auth needs "url" or "upstream" (the auth service)');
  if (f.url !== undefined && f.upstream !== undefined) error([...at, 'upstream'], 'forward auth takes "url" or "upstream", not both', undefined, 'key');
  if (f.path !== undefined && f.upstream === undefined) error([...at, 'path'], '"path" goes with "upstream" (a "url" has its own path)', undefined, 'key');
  if (f.upstream !== undefined) ctx.upstream(f.upstream, [...at, 'upstream']);
  if (f.body !== undefined && f.cache !== undefined) error([...at, 'cache'], 'a reused decision would not see the request body: "cache" and "body" do not go together', 'keep one of them', 'key');
  list(f.request_headers).forEach((h, i) => {
    if (typeof h === 'string' && NOT_FORWARDED.has(h.toLowerCase())) error([...at, 'request_headers', i], `${JSON.stringify(h)} is not copied: usher sets it (or it is hop-by-hop) for the auth request`);
  });
  list(f.response_headers).forEach((h, i) => {
    if (typeof h === 'string' && ['host', 'content-length', 'transfer-encoding', 'connection'].includes(h.toLowerCase())) error([...at, 'response_headers', i], `${JSON.stringify(h)} cannot be copied onto the upstream request`);
  });
}
