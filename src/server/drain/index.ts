// Long-lived connections across reloads: WebSocket tunnels, SSE streams and gRPC calls that are
// open when a reload commits. One on a route the reload left alone moves to the new runtime and
// keeps running (through any number of reloads); one whose route changed or went away is ended
// by that route's drain policy (config.ts): after `grace` a graceful close (Exchange.endGracefully),
// `close_after` later a cut. Ordinary requests are not kept here: they finish on the runtime they
// started with, whatever the reload did.
//
// What ends a connection (the README's table says the same):
//   - its route (by name) is gone, or differs in anything but its place in the file and `drain`;
//   - its upstream is gone; or the upstream changed and no longer lists the server the
//     connection went to, or its `protocol` or `tls` changed;
//   - an upgrade whose protocol `upgrade.protocols` no longer allows.
// Nothing else does: other routes, other upstreams, servers added, listeners' settings, timeouts,
// limits, rate limits, caches, the WAF, logs, the admin section.
import type { Logger } from 'pino';
import type { RouteConfig } from '../../config/types.js';
import type { ExchangeContext, LongLivedExchange } from '../../proxy/context.js';
import type { Cluster } from '../../upstream/cluster.js';
import type { Runtime } from '../runtime.js';
import { drainOf, routeChanged } from './route-change.js';

export type LongLivedEx = ExchangeContext & LongLivedExchange;

const SHUTDOWN = 'usher is shutting down';

interface Held {
  readonly ex: LongLivedEx;
  /** The route as the runtime it is attached to has it: its drain policy applies. */
  route: RouteConfig;
  /** The runtime whose in-flight count holds this connection (the newest one it was kept on). */
  runtime: Runtime;
  timer: NodeJS.Timeout | null;
  draining: boolean;
}

export interface DrainOwner {
  readonly runtime: Runtime;
  /** Shutting down: every long-lived connection is being closed. */
  readonly draining: boolean;
  readonly logger: Logger;
  /** One request fewer in flight on `rt` (which may then close what it retired). */
  release(rt: Runtime): void;
}

/** What one reload decides against: the new runtime's routes by name, and its upstreams' servers. */
interface Next {
  readonly runtime: Runtime;
  readonly routes: ReadonlyMap<string, RouteConfig>;
  readonly servers: Map<Cluster, ReadonlySet<string>>;
}

export class LongLivedConnections {
  private readonly held = new Map<ExchangeContext, Held>();

  constructor(private readonly owner: DrainOwner) {}

  get size(): number {
    return this.held.size;
  }

  /** The exchange became long-lived (Exchange: its tunnel opened, its SSE or gRPC head went out). */
  add(ex: LongLivedEx): void {
    const route = ex.route;
    if (route === undefined) return;
    const h: Held = { ex, route: route.config, runtime: ex.runtime as Runtime, timer: null, draining: false };
    this.held.set(ex, h);
    if (this.owner.draining) return ex.endGracefully(SHUTDOWN, 'shutting_down');
    // Its head came after a reload (it started before): judged against the config of now.
    if (h.runtime !== this.owner.runtime) this.judge(h, next(this.owner.runtime));
  }

  /** The exchange finished: the runtime its in-flight count is in (undefined: not a held one, ex.runtime). */
  done(ex: ExchangeContext): Runtime | undefined {
    const h = this.held.get(ex);
    if (h === undefined) return undefined;
    this.held.delete(ex);
    if (h.timer !== null) clearTimeout(h.timer);
    return h.runtime;
  }

  /** A reload committed `runtime`: every held connection not ending already is kept or set to end. */
  reloaded(runtime: Runtime): void {
    if (this.held.size === 0) return;
    const n = next(runtime);
    let kept = 0;
    const ending = new Map<string, number>();
    for (const h of this.held.values()) {
      if (h.draining) continue;
      if (this.judge(h, n)) kept++;
      else ending.set(h.route.name, (ending.get(h.route.name) ?? 0) + 1);
    }
    this.owner.logger.info({ kept, ending: Object.fromEntries(ending) }, 'reload: long-lived connections kept, and those set to end by their routes\' drain policy');
  }

  /**
   * Shutdown: every long-lived connection is closed gracefully now (a WebSocket gets 1001 going
   * away, an SSE stream ends, a gRPC call gets UNAVAILABLE), so that clients reconnect elsewhere
   * and the shutdown need not wait out its grace period for them; what is still open when it
   * ends is cut with the rest.
   */
  shutdown(): void {
    for (const h of this.held.values()) {
      if (h.timer !== null) clearTimeout(h.timer);
      h.timer = null;
      h.draining = true;
      h.ex.endGracefully(SHUTDOWN, 'shutting_down');
    }
  }

  /** Keeps `h` on the new runtime (true) or starts its drain. */
  private judge(h: Held, n: Next): boolean {
    const why = endsBecause(h, n);
    if (why === null) {
      h.route = n.routes.get(h.route.name)!;
      if (h.runtime !== n.runtime) {
        const old = h.runtime;
        h.runtime = n.runtime;
        n.runtime.inflight++;
        this.owner.release(old);
      }
      return true;
    }
    this.drain(h, why);
    return false;
  }

  private drain(h: Held, why: string): void {
    h.draining = true;
    const { grace, close_after } = drainOf(h.route);
    const ex = h.ex;
    this.owner.logger.debug({ request_id: ex.requestId, route: h.route.name, kind: ex.longLivedKind, why, grace_ms: grace, close_after_ms: close_after }, 'long-lived connection: ends by its route\'s drain policy');
    const end = () => {
      ex.endGracefully(`${why} in a reload`);
      h.timer = setTimeout(() => ex.cut(), close_after);
      h.timer.unref();
    };
    if (grace === 0) end();
    else {
      h.timer = setTimeout(end, grace);
      h.timer.unref();
    }
  }
}

function next(runtime: Runtime): Next {
  return { runtime, routes: new Map(runtime.routes.map((r) => [r.name, r.config])), servers: new Map() };
}

/** Why a reload to `n` ends the connection, or null when it stays. */
function endsBecause(h: Held, n: Next): string | null {
  const after = n.routes.get(h.route.name);
  if (after === undefined) return 'the route was removed';
  if (routeChanged(h.route, after)) return 'the route changed';
  const ex = h.ex;
  const cluster = ex.cluster;
  if (cluster !== undefined) {
    const now = n.runtime.clusters.get(cluster.name);
    if (now === undefined) return `upstream ${cluster.name} was removed`;
    if (now !== cluster) {
      // A changed upstream: the connection stays while its server is still one of the upstream's.
      const server = ex.current?.endpoint.id;
      let ids = n.servers.get(now);
      if (ids === undefined) n.servers.set(now, (ids = new Set(now.endpoints.map((e) => e.id))));
      if (server !== undefined && !ids.has(server)) return `server ${server} was removed from upstream ${cluster.name}`;
      if (now.config.protocol !== cluster.config.protocol || JSON.stringify(now.config.tls) !== JSON.stringify(cluster.config.tls)) return `the protocol or tls of upstream ${cluster.name} changed`;
    }
  }
  const upgrade = ex.upgrade;
  if (upgrade !== undefined && !n.runtime.config.upgrade.protocols.includes(upgrade.toLowerCase())) return `upgrade.protocols no longer allows ${upgrade}`;
  return null;
}
