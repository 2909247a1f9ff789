// The routing parts of a route (issue #3), normalised: matchers into lists of conditions, and
// the sections of the route's filters by their own normalizers (src/filters/<name>/config.ts).
// Runs after schema and checks passed (normalize.ts).
import { matchingPath, normalisePath } from '../router/normalize.js';
import { parseTrustedProxy } from './address.js';
import { DEFAULTS, type ConfigInput } from './schema.js';
import type { FieldCondition, RouteConfig, RouteMatch } from './types.js';
import { normalizeHeaderRules } from '../filters/headers/config.js';
import { normalizeMirror } from '../filters/mirror/config.js';
import { normalizeRedirect } from '../filters/redirect/config.js';
import { normalizeRewrite } from '../filters/rewrite/config.js';
import { normalizeSplit, normalizeStickyKey } from '../filters/split/config.js';

type RouteInput = NonNullable<ConfigInput['routes']>[number];
type MatchInput = NonNullable<RouteInput['match']>;
type ConditionInput = string | { exact?: string; regex?: string; present?: boolean };

/** Everything in `match` except the hosts. */
export function normalizeMatch(m: MatchInput | undefined): Omit<RouteMatch, 'hosts'> {
  const out: Omit<RouteMatch, 'hosts'> = {};
  if (m === undefined) return out;
  const p = m.path;
  // As requests are (src/router/normalize.ts); check-routing.ts warned when this changes a path.
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

/** The actions and options of a route beyond upstream/respond: the sections of its filters. */
export function normalizeRouteActions(r: RouteInput): Partial<RouteConfig> {
  const out: Partial<RouteConfig> = {};
  // Only when given, so configs without priorities normalise as before (the router reads `?? 0`).
  if (r.priority !== undefined && r.priority !== DEFAULTS.route.priority) out.priority = r.priority;
  if (r.split !== undefined) out.split = normalizeSplit(r.split);
  if (r.sticky_key !== undefined) out.sticky_key = normalizeStickyKey(r.sticky_key);
  if (r.redirect !== undefined) out.redirect = normalizeRedirect(r.redirect);
  if (r.rewrite !== undefined) out.rewrite = normalizeRewrite(r.rewrite);
  if (r.request_headers !== undefined) out.request_headers = normalizeHeaderRules(r.request_headers);
  if (r.response_headers !== undefined) out.response_headers = normalizeHeaderRules(r.response_headers);
  if (r.mirror !== undefined) out.mirror = normalizeMirror(r.mirror);
  return out;
}
