// Why a request takes the route it takes (`usher explain`). This walks every route in the
// router's order (priority, then host, path, file order) and tests each one in full, slowly and
// with reasons, instead of the compiled fast path; tests check that both pick the same route.
import type { RouteConfig } from '../config/types.js';
import { prefixMatches, type Candidate } from './router.js';
import { splitHost, type RouteRequest } from './request.js';

export interface Considered<R> {
  readonly candidate: Candidate<R>;
  /** Why it did not match. */
  readonly why: string;
  /** Whether the path already failed (else: a method, header, query, cookie or client condition). */
  readonly onPath: boolean;
}

export interface RouteExplanation<R> {
  /** The winner, if any. */
  readonly winner: Candidate<R> | undefined;
  /** Routes for this host tried before the winner (all of them when nothing matched), in order. */
  readonly tried: readonly Considered<R>[];
  /** Routes whose host does not match this request (not listed one by one). */
  readonly otherHosts: number;
  /** Routes after the winner that match too: the winner took the request from them. */
  readonly alsoMatched: readonly Candidate<R>[];
}

/** [class, detail] for how specifically a route's host matches, or undefined when it does not. */
function hostRank(m: RouteConfig['match'], rr: RouteRequest): [number, number] | undefined {
  if (m.hosts.length === 0) return [1, 0];
  let best: [number, number] | undefined;
  for (const h of m.hosts) {
    const [name, port] = splitHost(h);
    if (port !== '' && port !== rr.port) continue;
    let r: [number, number] | undefined;
    if (name.startsWith('*.')) {
      const suffix = name.slice(1);
      if (rr.host.length > suffix.length && rr.host.endsWith(suffix)) r = [2, suffix.length * 2 + (port === '' ? 0 : 1)];
    } else if (name === rr.host) r = [port === '' ? 3 : 4, 0];
    if (r !== undefined && (best === undefined || r[0] > best[0] || (r[0] === best[0] && r[1] > best[1]))) best = r;
  }
  return best;
}

function pathRank(m: RouteConfig['match']): [number, number] {
  if (m.exact_path !== undefined) return [3, 0];
  if (m.path_regex !== undefined) return [2, 0];
  const p = m.path === undefined || m.path === '/' ? '' : m.path;
  return [1, p.length];
}

function pathWhy<R>(c: Candidate<R>, rr: RouteRequest): string | undefined {
  const m = c.config.match;
  const path = rr.matchPath;
  if (m.exact_path !== undefined) return m.exact_path === path ? undefined : `path ${path} is not exactly ${m.exact_path}`;
  if (c.regex !== undefined) return c.regex.test(path) ? undefined : `path ${path} does not match /${m.path_regex}/`;
  const p = m.path === undefined || m.path === '/' ? '' : m.path;
  return prefixMatches(p, path) ? undefined : `path ${path} is not under the prefix ${p}`;
}

export function explainRoute<R>(candidates: readonly Candidate<R>[], rr: RouteRequest): RouteExplanation<R> {
  const ranked: { c: Candidate<R>; key: number[] }[] = [];
  let otherHosts = 0;
  for (const c of candidates) {
    const h = hostRank(c.config.match, rr);
    if (h === undefined) {
      otherHosts++;
      continue;
    }
    const p = pathRank(c.config.match);
    ranked.push({ c, key: [c.config.priority ?? 0, h[0], h[1], p[0], p[1], -c.config.index] });
  }
  ranked.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return b.key[i]! - a.key[i]!;
    return 0;
  });
  const tried: Considered<R>[] = [];
  let winner: Candidate<R> | undefined;
  const alsoMatched: Candidate<R>[] = [];
  for (const { c } of ranked) {
    let why = pathWhy(c, rr);
    const onPath = why !== undefined;
    if (why === undefined) {
      const failed = c.conditions.find((x) => !x.test(rr));
      if (failed !== undefined) why = failed.why(rr);
    }
    if (winner !== undefined) {
      if (why === undefined) alsoMatched.push(c);
    } else if (why === undefined) winner = c;
    else tried.push({ candidate: c, why, onPath });
  }
  return { winner, tried, otherHosts, alsoMatched };
}
