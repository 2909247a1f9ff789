// Semantic checks for the routing parts of routes (issue #3): path and condition shapes, regular
// expressions and CIDRs of the matchers, the one action of a route, then the checks of the
// sections of its filters (src/filters/<name>/config.ts), in the order of FILTER_CHECKS. Reads
// the data defensively, as check.ts does.
import { checkHeaderRules } from '../filters/headers/config.js';
import { checkMirror } from '../filters/mirror/config.js';
import { checkRedirect } from '../filters/redirect/config.js';
import { checkRewrite } from '../filters/rewrite/config.js';
import { checkSplit } from '../filters/split/config.js';
import { matchingPath, normalisePath } from '../router/normalize.js';
import { parseTrustedProxy } from './address.js';
import { checkRegex, isRec, list, type ErrorFn, type Rec, type RouteCheck, type RouteCheckContext } from './check-kit.js';
import type { Issues, Segment } from './issues.js';
import { didYouMean } from './suggest.js';

/** The checks of the sections of a route's filters, in the order their issues are reported. */
const FILTER_CHECKS: readonly RouteCheck[] = [checkSplit, checkRedirect, checkRewrite, checkHeaderRules, checkMirror];

/** True when the route uses `split` or `redirect`: then this module checks its actions (not check.ts). */
export function hasRoutingAction(route: Rec): boolean {
  return route.split !== undefined || route.redirect !== undefined;
}

/** Exactly one action among upstream, split, respond, redirect. */
export function checkRoutingActions(route: Rec, path: Segment[], error: ErrorFn): void {
  const present = ['upstream', 'split', 'respond', 'redirect'].filter((k) => route[k] !== undefined);
  if (present.length > 1) {
    error(path, `a route takes exactly one of "upstream", "split", "respond" or "redirect", found ${present.map((k) => `"${k}"`).join(' and ')}`, 'split it into several routes, or remove all but one');
  }
}

/** Checks one route's routing parts; adds the upstreams it names (split, mirror) to `used`. */
export function checkRouting(route: Rec, path: Segment[], upstreamNames: string[], known: ReadonlySet<string>, used: Set<string>, issues: Issues, error: ErrorFn): void {
  const m = route.match;
  if (isRec(m)) {
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
  }

  const upstream = (name: unknown, at: Segment[]) => {
    if (typeof name !== 'string') return;
    used.add(name);
    if (!known.has(name)) {
      error(at, `no upstream named ${JSON.stringify(name)}`, didYouMean(name, upstreamNames) ?? `defined upstreams: ${upstreamNames.join(', ') || '(none)'}`);
    }
  };
  const ctx: RouteCheckContext = { error, issues, upstream };
  for (const check of FILTER_CHECKS) check(route, path, ctx);
}
