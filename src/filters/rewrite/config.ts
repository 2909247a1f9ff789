// The `rewrite:` section of a route: its schema part, normalised form and checks (no defaults:
// what is not written is not changed). The factories (index.ts) read the normalised RewriteAction.
import { Type, type Static } from '@sinclair/typebox';
import { checkProxiedOnly, checkRegex, isRec, type RouteCheck } from '../../config/check-kit.js';
import { object, PATH_EXPECTED, PATH_PATTERN } from '../../config/schema-kit.js';

export const RewriteSchema = object(
  {
    strip_prefix: Type.Optional(
      Type.String({ pattern: PATH_PATTERN, description: 'Remove this prefix (on a segment boundary) from the path sent upstream.', 'x-usher-expected': PATH_EXPECTED }),
    ),
    add_prefix: Type.Optional(
      Type.String({ pattern: PATH_PATTERN, description: 'Put this prefix in front of the path sent upstream (after strip_prefix).', 'x-usher-expected': PATH_EXPECTED }),
    ),
    regex: Type.Optional(
      object(
        {
          pattern: Type.String({ minLength: 1, description: 'A JavaScript regular expression over the path (after strip/add prefix).' }),
          replace: Type.String({ description: 'The replacement: $1, $2... and $<name> are the captures.' }),
        },
        { description: 'Replace the first match of `pattern` in the path with `replace`.' },
      ),
    ),
    host: Type.Optional(
      Type.String({
        pattern: '^\\S+$',
        description: 'Host header to send upstream instead of the client\'s (an upstream\'s own host_header other than "preserve" still applies on top).',
        'x-usher-expected': 'a host name without spaces',
      }),
    ),
  },
  { description: 'Changes to the request sent upstream. The query string is kept as it came.' },
);

export interface RewriteAction {
  strip_prefix?: string;
  add_prefix?: string;
  regex?: { pattern: string; replace: string };
  host?: string;
}

export function normalizeRewrite(w: Static<typeof RewriteSchema>): RewriteAction {
  const out: RewriteAction = {};
  if (w.strip_prefix !== undefined) out.strip_prefix = w.strip_prefix;
  if (w.add_prefix !== undefined) out.add_prefix = w.add_prefix;
  if (w.regex !== undefined) out.regex = { pattern: w.regex.pattern, replace: w.regex.replace };
  if (w.host !== undefined) out.host = w.host;
  return out;
}

export const checkRewrite: RouteCheck = (route, path, { error }) => {
  checkProxiedOnly(route, path, 'rewrite', error);
  const w = route.rewrite;
  if (isRec(w) && isRec(w.regex) && typeof w.regex.pattern === 'string') checkRegex(w.regex.pattern, [...path, 'rewrite', 'regex', 'pattern'], error);
};
