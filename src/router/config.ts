// The `match:` section of a route (issue #3): the schema part of its matchers (host, path,
// method, headers, query, cookies, client address), their normalised form (RouteMatch, what
// the router compiles) and their checks. The router's part of the config, beside the router.
import { Type, type Static } from '@sinclair/typebox';
import { parseTrustedProxy } from '../config/address.js';
import { checkRegex, isRec, list, type RouteCheck } from '../config/check-kit.js';
import { object, PATH_EXPECTED, PATH_PATTERN, TOKEN_PATTERN } from '../config/schema-kit.js';
import { matchingPath, normalisePath } from './normalize.js';

/** A host name or IP literal, optionally "*."-prefixed and with a port. */
const HOST_EXPECTED = 'a host name like "example.com" or "*.example.com", optionally with ":port"';
const MATCH_HOST_PATTERN =
  '^((\\*\\.)?[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$';
const METHOD_PATTERN = '^[A-Z][A-Z0-9_-]*$';

const FieldConditionSchema = Type.Union(
  [
    Type.String({ description: 'The exact value.' }),
    object(
      {
        exact: Type.Optional(Type.String({ description: 'The exact value.' })),
        regex: Type.Optional(Type.String({ minLength: 1, description: 'A JavaScript regular expression the value must match (unanchored unless it says ^...$).' })),
        present: Type.Optional(Type.Boolean({ description: 'true: must be present (any value); false: must be absent.' })),
      },
      { description: 'One of exact, regex or present.' },
    ),
  ],
  {
    description: 'A condition on one value: a string (exact), or { exact }, { regex }, { present: true | false }.',
    'x-usher-expected': 'a string, or a mapping with one of "exact", "regex", "present"',
  },
);

const PathMatch = object(
  {
    prefix: Type.Optional(Type.String({ pattern: PATH_PATTERN, description: 'A prefix on a segment boundary.', 'x-usher-expected': PATH_EXPECTED })),
    exact: Type.Optional(Type.String({ pattern: PATH_PATTERN, description: 'The whole path, exactly.', 'x-usher-expected': PATH_EXPECTED })),
    regex: Type.Optional(
      Type.String({ minLength: 1, description: 'A JavaScript regular expression over the normalised path (without the query); anchor it with ^...$.' }),
    ),
  },
  { description: 'Exactly one of prefix, exact or regex.' },
);

export const RouteMatchSchema = object(
  {
    host: Type.Optional(
      Type.Union(
        [
          Type.String({ pattern: MATCH_HOST_PATTERN, 'x-usher-expected': HOST_EXPECTED }),
          Type.Array(Type.String({ pattern: MATCH_HOST_PATTERN, 'x-usher-expected': HOST_EXPECTED }), { minItems: 1 }),
        ],
        {
          description:
            'Host name(s) to match, case-insensitively: one string or a list. "*.example.com" matches names under example.com. Without a port, any port matches.',
          'x-usher-expected': 'a host name like "example.com" or "*.example.com", or a list of them',
        },
      ),
    ),
    path: Type.Optional(
      Type.Union(
        [
          Type.String({
            pattern: PATH_PATTERN,
            description: 'Path prefix to match on a segment boundary: "/api" matches "/api" and "/api/x", not "/apix". Must start with "/".',
            'x-usher-expected': PATH_EXPECTED,
          }),
          PathMatch,
        ],
        {
          description:
            'The path to match, on the normalised path (percent-encoded unreserved characters decoded, "." and ".." segments removed, repeated "/" merged): a string is a prefix on a segment boundary ("/api" matches "/api" and "/api/x", not "/apix"); or one of { prefix }, { exact }, { regex }.',
          'x-usher-expected': `${PATH_EXPECTED}, or a mapping with one of "prefix", "exact", "regex"`,
        },
      ),
    ),
    method: Type.Optional(
      Type.Union([Type.String({ pattern: METHOD_PATTERN }), Type.Array(Type.String({ pattern: METHOD_PATTERN }), { minItems: 1 })], {
        description: 'Request method(s) to match, upper case ("GET", or a list like ["GET", "HEAD"]).',
        'x-usher-expected': 'an upper-case method name like "GET", or a list of them',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: TOKEN_PATTERN }), FieldConditionSchema, {
        additionalProperties: false,
        description: 'Request headers to match, name (any case): condition. Every listed header must match.',
        'x-usher-key': 'header name',
        'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
      }),
    ),
    query: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), FieldConditionSchema, {
        additionalProperties: false,
        description: 'Query parameters to match, name: condition (the raw, undecoded value of the first parameter with that name).',
      }),
    ),
    cookies: Type.Optional(
      Type.Record(Type.String({ pattern: TOKEN_PATTERN }), FieldConditionSchema, {
        additionalProperties: false,
        description: 'Cookies (from the Cookie header) to match, name: condition.',
        'x-usher-key': 'cookie name',
        'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
      }),
    ),
    client_ip: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        description:
          'Client addresses to match: an IP or CIDR range ("10.0.0.0/8", "2001:db8::/32"), or a list. The client is the connection\'s peer or, when that peer is in proxy.trusted_proxies, the address it forwarded: the client the access lists and rate limits see.',
        'x-usher-expected': 'an IP address or CIDR range, or a list of them',
      }),
    ),
  },
  { description: 'What a request must look like for this route to apply. All given conditions must hold; omit to match every request.' },
);

export interface RouteMatch {
  /** Lower-cased host names; "*.example.com" wildcards allowed; port stripped unless given. */
  hosts: string[]; // empty: any host
  /** Path prefix on a segment boundary ("/api" matches "/api" and "/api/x", not "/apix"). */
  path?: string;
  /** The whole normalised path (`path: { exact }`). */
  exact_path?: string;
  /** A regular expression over the normalised path (`path: { regex }`). */
  path_regex?: string;
  /** Upper-case methods; absent: any. */
  methods?: string[];
  /** Header conditions (names lower case). */
  headers?: FieldCondition[];
  query?: FieldCondition[];
  cookies?: FieldCondition[];
  /** Normalised CIDRs ("10.0.0.0/8", "::1/128"). */
  client_ip?: string[];
}

/** A condition on one named value (header, query parameter, cookie). */
export interface FieldCondition {
  name: string;
  /** Exactly one of exact / regex / present is meaningful; present false means "absent". */
  exact?: string;
  regex?: string;
  present?: boolean;
}

type ConditionInput = string | { exact?: string; regex?: string; present?: boolean };

export function normalizeMatch(m: Static<typeof RouteMatchSchema> | undefined): RouteMatch {
  const host = m?.host;
  const out: RouteMatch = { hosts: host === undefined ? [] : [...new Set((typeof host === 'string' ? [host] : host).map((h) => h.toLowerCase()))] };
  if (m === undefined) return out;
  const p = m.path;
  // As requests are (normalize.ts); checkMatch warned when this changes a path.
  const normal = (x: string) => matchingPath(normalisePath(x, true) ?? x);
  if (typeof p === 'string') out.path = normal(p);
  else if (p !== undefined) {
    if (p.prefix !== undefined) out.path = normal(p.prefix);
    if (p.exact !== undefined) out.exact_path = normal(p.exact);
    if (p.regex !== undefined) out.path_regex = p.regex;
  }
  if (m.method !== undefined) out.methods = [...new Set(typeof m.method === 'string' ? [m.method] : m.method)];
  if (m.headers !== undefined) out.headers = conditions(m.headers, true);
  if (m.query !== undefined) out.query = conditions(m.query, false);
  if (m.cookies !== undefined) out.cookies = conditions(m.cookies, false);
  if (m.client_ip !== undefined) {
    out.client_ip = (typeof m.client_ip === 'string' ? [m.client_ip] : m.client_ip).map((c) => {
      const r = parseTrustedProxy(c);
      if (!r.ok) throw new Error(`usher config: unchecked invalid value: ${r.message}`);
      return r.cidr;
    });
  }
  return out;
}

function conditions(record: Record<string, ConditionInput>, lowerNames: boolean): FieldCondition[] {
  return Object.entries(record).map(([name, c]): FieldCondition => {
    const n = lowerNames ? name.toLowerCase() : name;
    if (typeof c === 'string') return { name: n, exact: c };
    if (c.exact !== undefined) return { name: n, exact: c.exact };
    if (c.regex !== undefined) return { name: n, regex: c.regex };
    return { name: n, present: c.present ?? true };
  });
}

export const checkMatch: RouteCheck = (route, path, { error, issues }) => {
  const m = route.match;
  if (!isRec(m)) return;
  const p = m.path;
  const written = typeof p === 'string' ? { at: [...path, 'match', 'path'], value: p } : isRec(p) ? ['prefix', 'exact'].map((k) => ({ at: [...path, 'match', 'path', k], value: p[k] })).find((x) => typeof x.value === 'string') : undefined;
  if (written !== undefined && typeof written.value === 'string') {
    // Requests are matched on their normalised path, so a route path must be normal too.
    const normalised = normalisePath(written.value, true);
    const normal = normalised === undefined ? undefined : matchingPath(normalised);
    if (normal !== undefined && normal !== written.value) {
      issues.warning(written.at, `request paths are normalised before matching, so ${JSON.stringify(written.value)} matches as ${JSON.stringify(normal)}`, { hint: `write ${JSON.stringify(normal)}` });
    }
  }
  if (isRec(p)) {
    const kinds = ['prefix', 'exact', 'regex'].filter((k) => p[k] !== undefined);
    if (kinds.length !== 1) error([...path, 'match', 'path'], `expected exactly one of "prefix", "exact" or "regex", found ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`);
    if (typeof p.regex === 'string') checkRegex(p.regex, [...path, 'match', 'path', 'regex'], error);
  }
  for (const key of ['headers', 'query', 'cookies']) {
    if (!isRec(m[key])) continue;
    for (const [name, c] of Object.entries(m[key])) {
      if (!isRec(c)) continue;
      const at = [...path, 'match', key, name];
      const kinds = ['exact', 'regex', 'present'].filter((k) => c[k] !== undefined);
      if (kinds.length !== 1) error(at, `expected exactly one of "exact", "regex" or "present", found ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`);
      if (typeof c.regex === 'string') checkRegex(c.regex, [...at, 'regex'], error);
    }
  }
  const ips = typeof m.client_ip === 'string' ? [m.client_ip] : list(m.client_ip);
  ips.forEach((ip, j) => {
    if (typeof ip !== 'string') return;
    const r = parseTrustedProxy(ip);
    if (!r.ok) error(typeof m.client_ip === 'string' ? [...path, 'match', 'client_ip'] : [...path, 'match', 'client_ip', j], r.message, r.hint);
  });
};
