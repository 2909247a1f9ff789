import type { RouteConfig } from '../config/types.js';

/**
 * Compiled routing table. Precedence (issue #2): exact host over wildcard host over no host,
 * then the longest path prefix, ties in file order. Compiled once per config; a match is a map
 * lookup plus a short scan of the candidates for that host.
 *
 * The routing issue replaces the per-host candidate scan with a prefix tree and adds the other
 * matchers; the `Router` interface is the seam.
 */
export interface Router<R> {
  match(host: string, path: string): R | undefined;
}

interface Candidate<R> {
  readonly prefix: string; // "" matches every path
  readonly route: R;
}

export class HostPathRouter<R> implements Router<R> {
  private readonly exact = new Map<string, Candidate<R>[]>();
  /** Wildcards "*.example.com" as suffix ".example.com", the longest suffix first. */
  private readonly wildcards: { suffix: string; candidates: Candidate<R>[] }[] = [];
  private readonly anyHost: Candidate<R>[] = [];

  constructor(routes: readonly { config: RouteConfig; route: R }[]) {
    for (const { config, route } of routes) {
      const candidate: Candidate<R> = { prefix: normalisePrefix(config.match.path), route };
      if (config.match.hosts.length === 0) {
        this.anyHost.push(candidate);
        continue;
      }
      for (const host of config.match.hosts) {
        if (host.startsWith('*.')) {
          const suffix = host.slice(1);
          let w = this.wildcards.find((x) => x.suffix === suffix);
          if (!w) this.wildcards.push((w = { suffix, candidates: [] }));
          w.candidates.push(candidate);
        } else {
          let list = this.exact.get(host);
          if (!list) this.exact.set(host, (list = []));
          list.push(candidate);
        }
      }
    }
    // Longest prefix first; Array.prototype.sort is stable, so equal lengths keep file order.
    const byLength = (a: Candidate<R>, b: Candidate<R>) => b.prefix.length - a.prefix.length;
    for (const list of this.exact.values()) list.sort(byLength);
    for (const w of this.wildcards) w.candidates.sort(byLength);
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.anyHost.sort(byLength);
  }

  /** `host`: lower case, without port. `path`: the path part of the target, without query. */
  match(host: string, path: string): R | undefined {
    const exact = this.exact.get(host);
    if (exact) {
      const r = scan(exact, path);
      if (r !== undefined) return r;
    }
    for (let i = 0; i < this.wildcards.length; i++) {
      const w = this.wildcards[i]!;
      // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
        const r = scan(w.candidates, path);
        if (r !== undefined) return r;
      }
    }
    return scan(this.anyHost, path);
  }
}

function scan<R>(candidates: readonly Candidate<R>[], path: string): R | undefined {
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (prefixMatches(c.prefix, path)) return c.route;
  }
  return undefined;
}

/** Prefix on a segment boundary: "/api" matches "/api", "/api/", "/api/x"; not "/apix". */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.length === 0) return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47; /* / */
}

function normalisePrefix(path: string | undefined): string {
  if (path === undefined || path === '/') return '';
  return path;
}

/**
 * Host for routing from a Host header value: lower case, port removed, IPv6 brackets kept.
 * Only the port is stripped; RFC 9110 §7.2 lets Host carry one.
 */
export function routingHost(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    const close = hostHeader.indexOf(']');
    end = close < 0 ? end : close + 1;
  } else {
    const colon = hostHeader.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  const host = end === hostHeader.length ? hostHeader : hostHeader.slice(0, end);
  // Fast path: most Host headers are already lower case.
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 65 && c <= 90) return host.toLowerCase();
  }
  return host;
}
