// Semantic checks for the routing parts of routes (issue #3): the one action of a route, then
// the checks of its matchers (src/router/config.ts) and of the sections of its filters
// (src/filters/<name>/config.ts, in the order of FILTER_CHECKS), with one context per route.
// Reads the data defensively, as check.ts does.
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { checkAccess } from '../filters/access/config.js';
import { checkAuth } from '../filters/auth/config.js';
import { checkCache } from '../filters/cache/config.js';
import { checkRouteWaf } from '../filters/waf/config.js';
import { checkCompress } from '../filters/compress/config.js';
import { checkCors } from '../filters/cors/config.js';
import { checkSecurityHeaders } from '../filters/security-headers/config.js';
import { checkHeaderRules } from '../filters/headers/config.js';
import { checkMirror } from '../filters/mirror/config.js';
import { checkRedirect } from '../filters/redirect/config.js';
import { checkRewrite } from '../filters/rewrite/config.js';
import { checkSplit } from '../filters/split/config.js';
import { checkMatch } from '../router/config.js';
import type { ErrorFn, Rec, RouteCheck, RouteCheckContext } from './check-kit.js';
import type { Issues, Segment } from './issues.js';
import { didYouMean } from './suggest.js';
import { baseDirOf } from './normalize.js';

/** The checks of the sections of a route's filters, in the order their issues are reported. */
const FILTER_CHECKS: readonly RouteCheck[] = [checkAccess, checkAuth, checkCors, checkSplit, checkRedirect, checkRewrite, checkHeaderRules, checkMirror, checkSecurityHeaders, checkCompress, checkCache, checkRouteWaf];

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
  const upstream = (name: unknown, at: Segment[]) => {
    if (typeof name !== 'string') return;
    used.add(name);
    if (!known.has(name)) {
      error(at, `no upstream named ${JSON.stringify(name)}`, didYouMean(name, upstreamNames) ?? `defined upstreams: ${upstreamNames.join(', ') || '(none)'}`);
    }
  };
  const baseDir = baseDirOf(issues.file);
  const resolve = (p: string) => (baseDir === undefined || isAbsolute(p) ? p : resolvePath(baseDir, p));
  const ctx: RouteCheckContext = { error, issues, upstream, resolve };
  checkMatch(route, path, ctx);
  for (const check of FILTER_CHECKS) check(route, path, ctx);
}
