// The matchers of a route in the config schema (issue #3). Route itself is in schema.ts; the
// sections of its filters (split, redirect, rewrite, header rules, mirror) beside the filters,
// in src/filters/<name>/config.ts.
import { Type } from '@sinclair/typebox';
import { HOST_EXPECTED, MATCH_HOST_PATTERN, object, PATH_EXPECTED, PATH_PATTERN, TOKEN_PATTERN } from './schema-parts.js';

const METHOD_PATTERN = '^[A-Z][A-Z0-9_-]*$';

const FieldCondition = Type.Union(
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

export const RouteMatch = object(
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
      Type.Record(Type.String({ pattern: TOKEN_PATTERN }), FieldCondition, {
        additionalProperties: false,
        description: 'Request headers to match, name (any case): condition. Every listed header must match.',
        'x-usher-key': 'header name',
        'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
      }),
    ),
    query: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), FieldCondition, {
        additionalProperties: false,
        description: 'Query parameters to match, name: condition (the raw, undecoded value of the first parameter with that name).',
      }),
    ),
    cookies: Type.Optional(
      Type.Record(Type.String({ pattern: TOKEN_PATTERN }), FieldCondition, {
        additionalProperties: false,
        description: 'Cookies (from the Cookie header) to match, name: condition.',
        'x-usher-key': 'cookie name',
        'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
      }),
    ),
    client_ip: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        description:
          'Client addresses to match: an IP or CIDR range ("10.0.0.0/8", "2001:db8::/32"), or a list. The client is the connection\'s peer address.',
        'x-usher-expected': 'an IP address or CIDR range, or a list of them',
      }),
    ),
  },
  { description: 'What a request must look like for this route to apply. All given conditions must hold; omit to match every request.' },
);
