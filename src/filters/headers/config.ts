// The `request_headers:` and `response_headers:` sections of a route (one schema part, used
// twice): schema, normalised form and checks. The factories (index.ts) read the normalised
// HeaderRules.
import { Type, type Static } from '@sinclair/typebox';
import { checkProxiedOnly, checkTemplate, isRec, list, type RouteCheck } from '../../config/check-kit.js';
import { headerName, object, TOKEN_PATTERN } from '../../config/schema-kit.js';
import { PLACEHOLDERS } from '../../config/template.js';

/** Headers a rule may not touch: framing and hop-by-hop fields are usher's (RFC 9110 §7.6.1). */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'host']);

/** The route keys this section is written under. */
const KEYS = ['request_headers', 'response_headers'] as const;

export function HeaderRulesSchema(description: string) {
  const values = (what: string) =>
    Type.Record(Type.String({ pattern: TOKEN_PATTERN }), Type.String(), {
      additionalProperties: false,
      description: `${what} ${PLACEHOLDERS}`,
      'x-usher-key': 'header name',
      'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
    });
  return object(
    {
      set: Type.Optional(values('Headers to set, name: value; replaces every field of that name.')),
      add: Type.Optional(values('Headers to add, name: value; keeps fields already there.')),
      remove: Type.Optional(Type.Array(headerName('A header name; case does not matter.'), { description: 'Headers to remove.' })),
    },
    { description: `${description} Applied in order: remove, set, add.` },
  );
}

export interface HeaderRules {
  /** Lower-case names, templates as written. */
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}

export function normalizeHeaderRules(h: Static<ReturnType<typeof HeaderRulesSchema>>): HeaderRules {
  const pairs = (r: Record<string, string> | undefined): [string, string][] => Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]);
  return { set: pairs(h.set), add: pairs(h.add), remove: [...new Set((h.remove ?? []).map((n) => n.toLowerCase()))] };
}

export const checkHeaderRules: RouteCheck = (route, path, { error }) => {
  for (const key of KEYS) checkProxiedOnly(route, path, key, error);
  for (const key of KEYS) {
    const h = route[key];
    if (!isRec(h)) continue;
    for (const op of ['set', 'add']) {
      if (!isRec(h[op])) continue;
      for (const [name, value] of Object.entries(h[op])) {
        const at = [...path, key, op, name];
        if (RESERVED_HEADERS.has(name.toLowerCase())) {
          error(at, `header ${JSON.stringify(name)} cannot be changed by a header rule: usher manages it`, name.toLowerCase() === 'host' ? 'use "rewrite: { host: ... }"' : 'remove it', 'key');
        } else if (typeof value === 'string') {
          if (/[\r\n\0]/.test(value)) error(at, `expected a header value without line breaks or NUL, got ${JSON.stringify(value)}`);
          else checkTemplate(value, at, error);
        }
      }
    }
    list(h.remove).forEach((name, j) => {
      if (typeof name === 'string' && RESERVED_HEADERS.has(name.toLowerCase())) error([...path, key, 'remove', j], `header ${JSON.stringify(name)} cannot be removed by a header rule: usher manages it`);
    });
  }
};
