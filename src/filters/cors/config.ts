// The `cors:` section of a route: its schema part, defaults, normalised form and checks. The
// filter (index.ts) reads the normalised CorsConfig.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type RouteCheck } from '../../config/check-kit.js';
import { duration, headerName, object, TOKEN_PATTERN } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';

export const CORS_DEFAULTS = { methods: ['GET', 'HEAD', 'POST'], headers: [] as string[], expose_headers: [] as string[], credentials: false, max_age: '5s' } as const;

const names = (description: string, dflt: readonly string[]) =>
  Type.Array(headerName('A header name, or "*"; case does not matter.'), { default: [...dflt], description });

export const CorsSchema = object(
  {
    origins: Type.Union([Type.Literal('*'), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
      description:
        'Origins allowed to read responses: "*" (any origin, without credentials), or a list of origins as browsers send them ("https://app.example.com", "http://localhost:3000") and patterns with one "*" for any subdomain ("https://*.example.com": not example.com itself).',
      'x-usher-expected': '"*" or a list of origins like "https://app.example.com" or "https://*.example.com"',
    }),
    methods: Type.Optional(
      Type.Array(Type.String({ pattern: TOKEN_PATTERN, 'x-usher-expected': 'a method like "PUT", or "*"' }), {
        default: [...CORS_DEFAULTS.methods],
        description: 'Methods a preflight may ask for (Access-Control-Allow-Methods). "*": whatever it asks for. GET, HEAD and POST need no preflight.',
      }),
    ),
    headers: Type.Optional(names('Request headers a preflight may ask for (Access-Control-Allow-Headers). "*": whatever it asks for.', CORS_DEFAULTS.headers)),
    expose_headers: Type.Optional(names('Response headers scripts may read beyond the CORS-safelisted ones (Access-Control-Expose-Headers).', CORS_DEFAULTS.expose_headers)),
    credentials: Type.Optional(
      Type.Boolean({
        default: CORS_DEFAULTS.credentials,
        description: 'Let browsers send cookies and HTTP authentication and read the answer (Access-Control-Allow-Credentials: true). Not with `origins: "*"`.',
      }),
    ),
    max_age: Type.Optional(duration('How long a browser may cache a preflight answer (Access-Control-Max-Age, in whole seconds).', CORS_DEFAULTS.max_age)),
  },
  {
    description:
      'Cross-origin resource sharing (the Fetch standard\'s CORS protocol). A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by usher, never proxied: 204 with the allow fields, or 403 cors_preflight_refused without them when the origin, method or a header is not allowed. Every other response of the route — proxied or made by usher, errors included — gets Access-Control-Allow-Origin (the request\'s origin when it is allowed; "*" with `origins: "*"`), Access-Control-Allow-Credentials and Access-Control-Expose-Headers as configured, and Vary: Origin when the answer depends on the origin; the upstream\'s own Access-Control-* fields are replaced.',
  },
);

export type CorsInput = Static<typeof CorsSchema>;

export interface CorsConfig {
  /** "*" or lower-case origins and "scheme://*.host[:port]" patterns. */
  origins: '*' | string[];
  /** Upper-case; ["*"] for any. */
  methods: string[];
  /** Lower-case; ["*"] for any. */
  headers: string[];
  expose_headers: string[];
  credentials: boolean;
  /** Seconds. */
  max_age: number;
}

export function normalizeCors(c: CorsInput): CorsConfig {
  return {
    origins: c.origins === '*' ? '*' : c.origins.map((o) => o.toLowerCase()),
    methods: (c.methods ?? CORS_DEFAULTS.methods).map((m) => m.toUpperCase()),
    headers: (c.headers ?? CORS_DEFAULTS.headers).map((h) => h.toLowerCase()),
    expose_headers: c.expose_headers ?? [...CORS_DEFAULTS.expose_headers],
    credentials: c.credentials ?? CORS_DEFAULTS.credentials,
    max_age: Math.floor(parseDuration(c.max_age ?? CORS_DEFAULTS.max_age) / 1000),
  };
}

/** An origin as browsers serialise it (RFC 6454 §6.2), or such a pattern with "*." before the host. */
const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:[0-9]{1,5})?$/i;

export const checkCors: RouteCheck = (route, path, { error }) => {
  const c = route.cors;
  if (!isRec(c)) return;
  const at = [...path, 'cors'];
  list(c.origins).forEach((o, i) => {
    if (typeof o !== 'string') return;
    if (o === '*') return error([...at, 'origins', i], 'write "*" alone, as `origins: "*"`, not inside a list');
    if (o === 'null') return; // the opaque origin, only when named
    if (!ORIGIN.test(o)) {
      const hint = o.endsWith('/') ? `without the trailing "/": ${JSON.stringify(o.replace(/\/+$/, ''))}` : /^[^:]+$/.test(o) ? `with the scheme: "https://${o}"` : 'an origin is scheme://host[:port], with no path';
      error([...at, 'origins', i], `expected an origin like "https://app.example.com" or a pattern like "https://*.example.com", got ${JSON.stringify(o)}`, hint);
    }
  });
  if (c.origins === '*' && c.credentials === true) {
    error([...at, 'credentials'], 'credentials cannot be allowed for any origin: browsers refuse "Access-Control-Allow-Origin: *" with credentials', 'list the origins that may send credentials', 'key');
  }
  for (const key of ['methods', 'headers', 'expose_headers']) {
    const v = list(c[key]);
    if (v.includes('*') && v.length > 1) error([...at, key], `"*" stands for every value: write ${JSON.stringify(key)}: ["*"] alone`);
  }
  if (c.credentials === true && list(c.expose_headers).includes('*')) {
    error([...at, 'expose_headers'], 'with credentials, browsers read "*" in Access-Control-Expose-Headers as a header named "*"', 'list the header names');
  }
};
