// `usher validate` warnings for routes that can never match: a route B is dead when some route A
// is tried before it for every request B matches, and matches every such request. That holds when
// A's hosts cover B's, A's path covers B's, A's other conditions are a subset of B's, and A comes
// first: a higher priority, or (equal priority, same hosts and path) earlier in the file.
// Only certain cases are reported (no regex reasoning), so a warning is never a false alarm.
import type { Issues } from './issues.js';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);

interface Shape {
  index: number;
  name: string;
  /** Whether the route has a name of its own (else `name` is "routes[N]", which the issue path already says). */
  named: boolean;
  priority: number;
  hosts: string[]; // sorted, lower case; [] = any
  pathKind: 'any' | 'prefix' | 'exact' | 'regex';
  path: string;
  conditions: Set<string>;
  key: string;
}

function shapeOf(route: unknown, index: number): Shape | undefined {
  if (!isRec(route)) return undefined;
  const m = route.match === undefined ? {} : route.match;
  if (!isRec(m)) return undefined;
  const priority = route.priority === undefined ? 0 : route.priority;
  if (typeof priority !== 'number') return undefined;
  const h = m.host;
  const hostList = h === undefined ? [] : typeof h === 'string' ? [h] : Array.isArray(h) ? h : undefined;
  if (hostList === undefined || !hostList.every((x) => typeof x === 'string')) return undefined;
  const hosts = [...new Set(hostList.map((x: string) => x.toLowerCase()))].sort();
  let pathKind: Shape['pathKind'] = 'any';
  let path = '';
  const p = m.path;
  if (typeof p === 'string') [pathKind, path] = ['prefix', p];
  else if (isRec(p)) {
    const k = (['prefix', 'exact', 'regex'] as const).find((x) => typeof p[x] === 'string');
    if (k === undefined) return undefined;
    [pathKind, path] = [k, p[k] as string];
  } else if (p !== undefined) return undefined;
  if (pathKind === 'prefix' && path === '/') [pathKind, path] = ['any', ''];
  const conditions = new Set<string>();
  for (const key of ['method', 'headers', 'query', 'cookies', 'client_ip']) {
    const v = m[key];
    if (v === undefined) continue;
    if (key === 'method' || key === 'client_ip') {
      // A list is an "or": only a one-element list is one condition.
      const xs = typeof v === 'string' ? [v] : Array.isArray(v) ? v : [];
      conditions.add(`${key}=${JSON.stringify([...xs].sort())}`);
    } else if (isRec(v)) {
      for (const [name, c] of Object.entries(v)) conditions.add(`${key}.${key === 'headers' ? name.toLowerCase() : name}=${JSON.stringify(c)}`);
    }
  }
  const name = typeof route.name === 'string' ? route.name : `routes[${index}]`;
  const key = JSON.stringify([priority, hosts, pathKind, path, [...conditions].sort()]);
  return { index, name, named: typeof route.name === 'string', priority, hosts, pathKind, path, conditions, key };
}

/** How a warning names the route it is about, and the other route. */
const subject = (s: Shape) => (s.named ? `route ${JSON.stringify(s.name)}` : 'this route');
const other = (s: Shape) => (s.named ? `${JSON.stringify(s.name)} (routes[${s.index}])` : `routes[${s.index}]`);

function hostCovers(a: string, b: string): boolean {
  if (a === b) return true;
  // "*.example.com" covers "x.example.com", "a.b.example.com" and "*.x.example.com".
  return a.startsWith('*.') && b.length > a.length - 1 && b.endsWith(a.slice(1));
}

function prefixCovers(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47;
}

function covers(a: Shape, b: Shape): boolean {
  if (a.hosts.length > 0 && (b.hosts.length === 0 || !b.hosts.every((bh) => a.hosts.some((ah) => hostCovers(ah, bh))))) return false;
  switch (a.pathKind) {
    case 'any':
      break;
    case 'prefix':
      if (!((b.pathKind === 'prefix' || b.pathKind === 'exact') && prefixCovers(a.path, b.path))) return false;
      break;
    default:
      if (b.pathKind !== a.pathKind || b.path !== a.path) return false;
  }
  for (const c of a.conditions) if (!b.conditions.has(c)) return false;
  return true;
}

/**
 * Earlier routes indexed by what a covering route must have in common with the one checked:
 * host key ("" for any host, else each of its hosts) → path key ("any", "prefix:/p", "exact:/p",
 * "regex:…") → its first condition ("" if none; a's conditions must all be in b's, so its first
 * is one of b's). A route is then compared only with the few earlier routes that could cover it.
 * Comparing each route with every earlier any-host route was quadratic: 8k routes took 1.2 s,
 * 32k 18.5 s (issue #11); see bench/micro/config-load.js for the figures now.
 */
type Index = Map<string, Map<string, Map<string, Shape[]>>>;

function pathKey(s: Shape): string {
  return s.pathKind === 'any' ? 'any' : `${s.pathKind}:${s.path}`;
}

function indexAdd(index: Index, s: Shape): void {
  const first = s.conditions.size === 0 ? '' : [...s.conditions].sort()[0]!;
  for (const h of s.hosts.length === 0 ? [''] : s.hosts) {
    let byPath = index.get(h);
    if (!byPath) index.set(h, (byPath = new Map()));
    let byCond = byPath.get(pathKey(s));
    if (!byCond) byPath.set(pathKey(s), (byCond = new Map()));
    let list = byCond.get(first);
    if (!list) byCond.set(first, (list = []));
    list.push(s);
  }
}

/** Host keys under which a route covering `b`'s hosts is indexed. */
function hostKeysFor(b: Shape): string[] {
  const keys = [''];
  const h = b.hosts[0];
  if (h === undefined) return keys;
  keys.push(h);
  // "*.example.com" covers "x.example.com" and "*.x.example.com": every suffix after a dot.
  for (let i = h.indexOf('.'); i !== -1; i = h.indexOf('.', i + 1)) keys.push(`*.${h.slice(i + 1)}`);
  return keys;
}

/** Path keys of the routes whose path could cover `b`'s (prefixCovers, or the same path). */
function pathKeysFor(b: Shape): string[] {
  const keys = ['any'];
  if (b.pathKind === 'prefix' || b.pathKind === 'exact') {
    const p = b.path;
    keys.push(`prefix:${p}`);
    for (let k = p.indexOf('/'); k !== -1; k = p.indexOf('/', k + 1)) {
      if (k > 0) keys.push(`prefix:${p.slice(0, k)}`);
      if (k + 1 < p.length) keys.push(`prefix:${p.slice(0, k + 1)}`);
    }
  }
  if (b.pathKind !== 'any' && b.pathKind !== 'prefix') keys.push(pathKey(b));
  return keys;
}

/** Warnings for dead routes. */
export function warnShadowedRoutes(routes: unknown, issues: Issues): void {
  if (!Array.isArray(routes)) return;
  const shapes = routes.map(shapeOf);
  const index: Index = new Map();
  const firstByKey = new Map<string, Shape>();
  for (const s of shapes) {
    if (s === undefined) continue;
    const dup = firstByKey.get(s.key);
    if (dup !== undefined) {
      issues.warning(['routes', s.index], `${subject(s)} duplicates ${other(dup)}: same priority and match, so it never matches`, {
        hint: 'remove one, or make their matches differ',
      });
    } else {
      firstByKey.set(s.key, s);
      const shadow = findShadow(s, index);
      if (shadow !== undefined) {
        const why = shadow.priority > s.priority ? `it has a higher priority (${shadow.priority} > ${s.priority})` : 'it comes first in the file';
        issues.warning(['routes', s.index], `${subject(s)} can never match: ${other(shadow)} matches every request it would, and ${why}`, {
          hint: 'reorder them, narrow the broader route, or raise this route\'s priority',
        });
      }
    }
    indexAdd(index, s);
  }
}

/**
 * The earlier route that shadows `b`, if any. When several do, the one named is, as before the
 * index: the first any-host route, else the first with a wildcard host, else the first other.
 */
function findShadow(b: Shape, index: Index): Shape | undefined {
  const check = (a: Shape) => covers(a, b) && (a.priority > b.priority || (a.priority === b.priority && a.pathKind === b.pathKind && a.path === b.path && sameHosts(a, b)));
  const rank = (a: Shape) => (a.hosts.length === 0 ? 0 : a.hosts.some((h) => h.startsWith('*.')) ? 1 : 2);
  const conds = ['', ...b.conditions];
  let best: Shape | undefined;
  for (const h of hostKeysFor(b)) {
    const byPath = index.get(h);
    if (byPath === undefined) continue;
    for (const p of pathKeysFor(b)) {
      const byCond = byPath.get(p);
      if (byCond === undefined) continue;
      for (const c of conds) {
        for (const a of byCond.get(c) ?? []) {
          if (best !== undefined && (rank(a) > rank(best) || (rank(a) === rank(best) && a.index >= best.index))) continue;
          if (!check(a)) continue;
          best = a;
          // Lists are in file order: later ones here can only be better when ranks mix (an
          // exact-host list holds routes with and without wildcard hosts).
          if (rank(a) < 2) break;
        }
      }
    }
  }
  return best;
}
function sameHosts(a: Shape, b: Shape): boolean {
  return a.hosts.length === b.hosts.length && a.hosts.every((h, i) => h === b.hosts[i]);
}
