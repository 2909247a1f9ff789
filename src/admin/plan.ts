// POST /config/plan: what applying a candidate config would change, against the running one.
// Routes and upstreams are told apart by name, listeners by address; "changed" compares the
// normalised config, positions in the file aside (moving a route in the file is no change).
import type { ListenerConfig, RouteConfig, UsherConfig } from '../config/types.js';
import { drainOf, routeChanged } from '../server/drain/route-change.js';

export interface Diff {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface Plan {
  routes: Diff & { order_changed: boolean };
  upstreams: Diff;
  listeners: Diff;
  /** Other top-level sections that differ (timeouts, limits, proxy, log, admin, ...). */
  settings: string[];
  /**
   * What the change would end: connections of removed listeners, pools of changed upstreams, and
   * the long-lived connections (WebSockets, SSE streams, gRPC calls) a reload ends by their
   * routes' drain policy (src/server/drain/: the same rules the reload applies).
   */
  ends: string[];
  /** Nothing would change. */
  unchanged: boolean;
}

function same(a: unknown, b: unknown, omit: readonly string[]): boolean {
  return stable(a, omit) === stable(b, omit);
}

function stable(v: unknown, omit: readonly string[]): string {
  return JSON.stringify(v, (k, x: unknown) => (omit.includes(k) ? undefined : x));
}

function diff<T>(before: ReadonlyMap<string, T>, after: ReadonlyMap<string, T>, omit: readonly string[]): Diff {
  const d: Diff = { added: [], removed: [], changed: [] };
  for (const [k, v] of after) {
    const old = before.get(k);
    if (old === undefined) d.added.push(k);
    else if (!same(old, v, omit)) d.changed.push(k);
  }
  for (const k of before.keys()) if (!after.has(k)) d.removed.push(k);
  return d;
}

const listenerKey = (l: ListenerConfig) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}${l.tls ? ' (tls)' : ''}`;

export function planConfig(running: UsherConfig, next: UsherConfig): Plan {
  const routes = diff(new Map(running.routes.map((r) => [r.name, r])), new Map(next.routes.map((r) => [r.name, r])), ['source', 'index']);
  const kept = (names: string[], other: Set<string>) => names.filter((n) => other.has(n));
  const beforeNames = running.routes.map((r) => r.name);
  const afterNames = next.routes.map((r) => r.name);
  const order_changed = stable(kept(beforeNames, new Set(afterNames)), []) !== stable(kept(afterNames, new Set(beforeNames)), []);
  const upstreams = diff(new Map(Object.entries(running.upstreams)), new Map(Object.entries(next.upstreams)), ['source']);
  const listeners = diff(new Map(running.listeners.map((l) => [listenerKey(l), l])), new Map(next.listeners.map((l) => [listenerKey(l), l])), ['source']);
  const settings: string[] = [];
  const top = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const k of top) {
    if (k === 'routes' || k === 'upstreams' || k === 'listeners' || k === 'file') continue;
    if (!same((running as unknown as Record<string, unknown>)[k], (next as unknown as Record<string, unknown>)[k], ['source'])) settings.push(k);
  }
  const ends: string[] = [];
  for (const l of listeners.removed) ends.push(`listener ${l}: stops accepting; its open connections close once their requests finish (WebSocket tunnels included)`);
  for (const u of [...upstreams.changed, ...upstreams.removed]) {
    ends.push(`upstream ${u}: its connection pools close once the requests on them finish; admin drains and weight overrides on it end`);
  }
  const nextRoutes = new Map(next.routes.map((r) => [r.name, r]));
  const policy = (r: RouteConfig) => {
    const d = drainOf(r);
    return `closed gracefully after ${ms(d.grace)}, cut ${ms(d.close_after)} later`;
  };
  for (const r of running.routes) {
    const after = nextRoutes.get(r.name);
    if (after === undefined) ends.push(`route ${r.name}: removed: its long-lived connections (WebSockets, SSE streams, gRPC calls) end by its drain policy: ${policy(r)}`);
    else if (routeChanged(r, after)) ends.push(`route ${r.name}: changed: its long-lived connections (WebSockets, SSE streams, gRPC calls) end by its drain policy: ${policy(r)}`);
  }
  for (const name of upstreams.removed) ends.push(`upstream ${name}: removed: long-lived connections to it end by their routes' drain policy`);
  for (const name of upstreams.changed) {
    const before = running.upstreams[name]!;
    const after = next.upstreams[name]!;
    if (before.protocol !== after.protocol || JSON.stringify(before.tls) !== JSON.stringify(after.tls)) {
      ends.push(`upstream ${name}: its protocol or tls changed: long-lived connections to it end by their routes' drain policy`);
      continue;
    }
    const kept = new Set(after.servers.map((x) => x.url));
    const gone = before.servers.map((x) => x.url).filter((u) => !kept.has(u));
    if (gone.length > 0) ends.push(`upstream ${name}: long-lived connections to ${gone.join(', ')} (no longer listed) end by their routes' drain policy; those to its other servers stay`);
  }
  const dropped = running.upgrade.protocols.filter((p) => !next.upgrade.protocols.includes(p));
  if (dropped.length > 0) ends.push(`upgrade.protocols: open ${dropped.join(', ')} tunnels end by their routes' drain policy`);
  const unchanged =
    [routes, upstreams, listeners].every((d) => d.added.length + d.removed.length + d.changed.length === 0) && !order_changed && settings.length === 0;
  return { routes: { ...routes, order_changed }, upstreams, listeners, settings, ends, unchanged };
}

/** A duration for a sentence: "30s", "250ms", "10m". */
function ms(v: number): string {
  if (v % 60_000 === 0 && v > 0) return `${v / 60_000}m`;
  if (v % 1000 === 0) return `${v / 1000}s`;
  return `${v}ms`;
}
