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

/** Warnings for dead routes. Candidates are looked up by host, so 10,000 routes stay fast. */
export function warnShadowedRoutes(routes: unknown, issues: Issues): void {
  if (!Array.isArray(routes)) return;
  const shapes = routes.map(shapeOf);
  const anyHost: Shape[] = [];
  const wildcard: Shape[] = [];
  const byHost = new Map<string, Shape[]>();
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
      const shadow = findShadow(s, anyHost, wildcard, byHost);
      if (shadow !== undefined) {
        const why = shadow.priority > s.priority ? `it has a higher priority (${shadow.priority} > ${s.priority})` : 'it comes first in the file';
        issues.warning(['routes', s.index], `${subject(s)} can never match: ${other(shadow)} matches every request it would, and ${why}`, {
          hint: 'reorder them, narrow the broader route, or raise this route\'s priority',
        });
      }
    }
    if (s.hosts.length === 0) anyHost.push(s);
    for (const h of s.hosts) {
      if (h.startsWith('*.')) wildcard.push(s);
      let l = byHost.get(h);
      if (!l) byHost.set(h, (l = []));
      l.push(s);
    }
  }
}

function findShadow(b: Shape, anyHost: Shape[], wildcard: Shape[], byHost: Map<string, Shape[]>): Shape | undefined {
  const check = (a: Shape) => covers(a, b) && (a.priority > b.priority || (a.priority === b.priority && a.pathKind === b.pathKind && a.path === b.path && sameHosts(a, b)));
  for (const a of anyHost) if (check(a)) return a;
  for (const a of wildcard) if (check(a)) return a;
  if (b.hosts.length > 0) for (const a of byHost.get(b.hosts[0]!) ?? []) if (check(a)) return a;
  return undefined;
}

function sameHosts(a: Shape, b: Shape): boolean {
  return a.hosts.length === b.hosts.length && a.hosts.every((h, i) => h === b.hosts[i]);
}
