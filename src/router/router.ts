import type { RouteConfig } from '../config/types.js';
import { compileConditions, type Condition } from './conditions.js';
import { RouteRequest, splitHost } from './request.js';

/**
 * Compiled routing table (issue #3). Order: `priority` (higher first), then most specific:
 * exact host (with its port, if the route gives one) over wildcard host (longest suffix first)
 * over no host; then exact path over regex (file order) over the longest path prefix; ties in
 * file order. Compiled once per config. A match is, per priority level in use (usually one):
 * a host map lookup, one exact-path map lookup, the regexes configured for that host, and a
 * walk down a prefix tree of path segments — so 10,000 routes cost about what 10 do. The
 * matchers beyond host and path only run on candidates that got that far.
 */
export interface Router<R> {
  route(rr: RouteRequest): R | undefined;
  match(host: string, path: string): R | undefined;
}

export interface Candidate<R> {
  readonly route: R;
  readonly config: RouteConfig;
  readonly conditions: readonly Condition[];
  readonly regex: RegExp | undefined;
}

interface Node<R> {
  children: Map<string, Node<R>> | null;
  /** Prefixes ending at this node: they match when the path ends here or goes on with "/". */
  here: Candidate<R>[];
  /** Prefixes ending here with a trailing "/" ("/api/"): they match only when the path goes on. */
  slash: Candidate<R>[];
}

class Bucket<R> {
  exact: Map<string, Candidate<R>[]> | null = null;
  regexes: Candidate<R>[] = [];
  readonly root: Node<R> = { children: null, here: [], slash: [] };

  add(c: Candidate<R>): void {
    const m = c.config.match;
    if (m.exact_path !== undefined) {
      this.exact ??= new Map();
      let l = this.exact.get(m.exact_path);
      if (!l) this.exact.set(m.exact_path, (l = []));
      l.push(c);
    } else if (c.regex !== undefined) {
      this.regexes.push(c);
    } else {
      const prefix = m.path === undefined || m.path === '/' ? '' : m.path;
      let node = this.root;
      const slash = prefix.endsWith('/');
      const body = slash ? prefix.slice(1, -1) : prefix.slice(1);
      if (prefix !== '') {
        for (const seg of body.split('/')) {
          node.children ??= new Map();
          let next = node.children.get(seg);
          if (!next) node.children.set(seg, (next = { children: null, here: [], slash: [] }));
          node = next;
        }
      }
      (slash ? node.slash : node.here).push(c);
    }
  }

  match(rr: RouteRequest): R | undefined {
    const path = rr.matchPath;
    if (this.exact !== null) {
      const l = this.exact.get(path);
      if (l !== undefined) {
        const r = first(l, rr);
        if (r !== undefined) return r;
      }
    }
    for (let i = 0; i < this.regexes.length; i++) {
      const c = this.regexes[i]!;
      if (c.regex!.test(path) && passes(c.conditions, rr)) return c.route;
    }
    // Walk down as far as the path's segments go, then try the deepest (longest) prefix first.
    let depth = 0;
    let node = this.root;
    nodes[0] = node;
    goesOn[0] = true;
    let pos = 1;
    while (node.children !== null) {
      const end = path.indexOf('/', pos);
      const next = node.children.get(end < 0 ? path.slice(pos) : path.slice(pos, end));
      if (next === undefined) break;
      node = next;
      depth++;
      nodes[depth] = node;
      goesOn[depth] = end >= 0;
      if (end < 0) break;
      pos = end + 1;
    }
    for (let d = depth; d >= 0; d--) {
      const n = nodes[d] as Node<R>;
      if (goesOn[d] && n.slash.length > 0) {
        const r = first(n.slash, rr);
        if (r !== undefined) return clear(r, depth);
      }
      if (n.here.length > 0) {
        const r = first(n.here, rr);
        if (r !== undefined) return clear(r, depth);
      }
    }
    clear(undefined, depth);
    return undefined;
  }
}

// The walk's stack, reused: matching is synchronous, so one per process is enough.
const nodes: (Node<unknown> | undefined)[] = [];
const goesOn: boolean[] = [];

function clear<R>(r: R | undefined, depth: number): R | undefined {
  for (let d = 0; d <= depth; d++) nodes[d] = undefined;
  return r;
}

function passes(conditions: readonly Condition[], rr: RouteRequest): boolean {
  for (let i = 0; i < conditions.length; i++) if (!conditions[i]!.test(rr)) return false;
  return true;
}

function first<R>(list: readonly Candidate<R>[], rr: RouteRequest): R | undefined {
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c.conditions.length === 0 || passes(c.conditions, rr)) return c.route;
  }
  return undefined;
}

interface Wildcard<R> {
  readonly suffix: string; // ".example.com"
  readonly port: string; // "" any
  readonly bucket: Bucket<R>;
}

/** All routes of one priority. */
class Level<R> {
  readonly exact = new Map<string, Bucket<R>>();
  readonly wildcards: Wildcard<R>[] = [];
  private readonly wildcardByKey = new Map<string, Wildcard<R>>();
  readonly any = new Bucket<R>();
  hasPorts = false;

  add(c: Candidate<R>): void {
    const hosts = c.config.match.hosts;
    if (hosts.length === 0) return this.any.add(c);
    for (const h of hosts) {
      const [name, port] = splitHost(h);
      if (port !== '') this.hasPorts = true;
      if (name.startsWith('*.')) {
        const suffix = name.slice(1);
        // By key, not a search of the list: 20k wildcard routes made that quadratic.
        let w = this.wildcardByKey.get(`${suffix}:${port}`);
        if (!w) {
          this.wildcards.push((w = { suffix, port, bucket: new Bucket() }));
          this.wildcardByKey.set(`${suffix}:${port}`, w);
        }
        w.bucket.add(c);
      } else {
        const key = port === '' ? name : `${name}:${port}`;
        let b = this.exact.get(key);
        if (!b) this.exact.set(key, (b = new Bucket()));
        b.add(c);
      }
    }
  }

  seal(): void {
    // Longest suffix first; with a port before without, at equal length.
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length || (a.port === '' ? 1 : 0) - (b.port === '' ? 1 : 0));
  }

  match(rr: RouteRequest): R | undefined {
    const host = rr.host;
    if (this.hasPorts && rr.port !== '') {
      const withPort = this.exact.get(`${host}:${rr.port}`);
      if (withPort !== undefined) {
        const r = withPort.match(rr);
        if (r !== undefined) return r;
      }
    }
    const exact = this.exact.get(host);
    if (exact !== undefined) {
      const r = exact.match(rr);
      if (r !== undefined) return r;
    }
    for (let i = 0; i < this.wildcards.length; i++) {
      const w = this.wildcards[i]!;
      // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
      if (host.length > w.suffix.length && host.endsWith(w.suffix) && (w.port === '' || w.port === rr.port)) {
        const r = w.bucket.match(rr);
        if (r !== undefined) return r;
      }
    }
    return this.any.match(rr);
  }
}

export class HostPathRouter<R> implements Router<R> {
  /** Highest priority first. */
  private levels: Level<R>[] = [];
  private readonly byPriority = new Map<number, Level<R>>();
  private readonly all: Candidate<R>[] = [];

  /** With `routes`, a sealed router; without, an empty one to fill with add() and seal(). */
  constructor(routes?: readonly { config: RouteConfig; route: R }[]) {
    if (routes === undefined) return;
    for (const r of routes) this.add(r.config, r.route);
    this.seal();
  }

  /** Every route with its compiled matchers, in file order (for explain and validate). */
  get candidates(): readonly Candidate<R>[] {
    return this.all;
  }

  /**
   * Adds one route (in file order). A reload adds them a slice at a time between requests
   * (Runtime.buildInSlices): 20k routes at once held the event loop for ~80 ms.
   */
  add(config: RouteConfig, route: R): void {
    const m = config.match;
    const c: Candidate<R> = { route, config, conditions: compileConditions(m), regex: m.path_regex === undefined ? undefined : new RegExp(m.path_regex) };
    this.all.push(c);
    const p = config.priority ?? 0;
    let level = this.byPriority.get(p);
    if (!level) this.byPriority.set(p, (level = new Level()));
    level.add(c);
  }

  /** Call once all routes are added, before route(). */
  seal(): void {
    this.levels = [...this.byPriority.keys()].sort((a, b) => b - a).map((p) => {
      const level = this.byPriority.get(p)!;
      level.seal();
      return level;
    });
  }

  route(rr: RouteRequest): R | undefined {
    const levels = this.levels;
    for (let i = 0; i < levels.length; i++) {
      const r = levels[i]!.match(rr);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /** Host and path only (a GET without headers): `host` lower case, optionally with ":port". */
  match(host: string, path: string): R | undefined {
    const [name, port] = splitHost(host);
    return this.route(new RouteRequest(name, port, path, '', 'GET', [], '', 'http'));
  }
}

/** Prefix on a segment boundary: "/api" matches "/api", "/api/", "/api/x"; not "/apix". */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.length === 0) return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47; /* / */
}

/**
 * Host for routing from a Host header value: lower case, port removed, IPv6 brackets kept.
 * Only the port is stripped; RFC 9110 §7.2 lets Host carry one.
 */
export function routingHost(hostHeader: string | undefined): string {
  return splitHost(hostHeader)[0];
}
