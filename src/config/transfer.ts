// A LoadResult carried between threads (load-worker.ts → load-off-thread.ts). Structured clone
// gives plain objects back: the null-prototype tables (upstreams, respond headers: see
// src/util/dict.ts) travel as entry lists and are rebuilt, and everything is frozen again.
// Routes travel in slices, one message each, so that no single deserialization holds the
// receiving event loop: all 20k routes at once took ~140 ms to clone.
import { deepFreeze } from './normalize.js';
import type { ConfigIssue, LoadResult, RouteConfig, UpstreamConfig, UsherConfig } from './types.js';
import { dict } from '../util/dict.js';

export const ROUTES_PER_MESSAGE = 250;

/** What the loading thread is asked to do: a file, an object already in memory (the built-in demo), or a text (the admin API's candidate). */
export type LoadJob = { path: string; env: NodeJS.ProcessEnv } | { object: unknown; source: string } | { text: string; file: string; env: NodeJS.ProcessEnv };

type WireRoute = Omit<RouteConfig, 'respond'> & { respond?: Omit<NonNullable<RouteConfig['respond']>, 'headers'> & { headers: [string, string][] } };

export type LoadMessage =
  | { kind: 'failed'; errors: ConfigIssue[]; warnings: ConfigIssue[] }
  | { kind: 'head'; config: Omit<UsherConfig, 'routes' | 'upstreams'> & { upstreams: [string, UpstreamConfig][] }; routes: number; warnings: ConfigIssue[] }
  | { kind: 'routes'; routes: WireRoute[] };

export function toMessages(result: LoadResult): LoadMessage[] {
  if (!result.ok) return [{ kind: 'failed', errors: result.errors, warnings: result.warnings }];
  const { routes, upstreams, ...rest } = result.config;
  const out: LoadMessage[] = [{ kind: 'head', config: { ...rest, upstreams: Object.entries(upstreams) }, routes: routes.length, warnings: result.warnings }];
  for (let i = 0; i < routes.length; i += ROUTES_PER_MESSAGE) {
    out.push({
      kind: 'routes',
      routes: routes.slice(i, i + ROUTES_PER_MESSAGE).map((r): WireRoute => {
        const { respond, ...route } = r;
        return respond === undefined ? route : { ...route, respond: { ...respond, headers: Object.entries(respond.headers) } };
      }),
    });
  }
  return out;
}

/** Rebuilds a received slice of routes in place (they are this thread's own copies): frozen, with their null-prototype header tables. */
export function reviveRoutes(routes: WireRoute[]): RouteConfig[] {
  for (const r of routes) {
    if (r.respond === undefined) continue;
    const respond = r.respond as { headers: unknown };
    respond.headers = dict(r.respond.headers);
  }
  return routes.map((r) => deepFreeze(r as unknown as RouteConfig));
}

export function reviveConfig(head: Extract<LoadMessage, { kind: 'head' }>, routes: RouteConfig[]): UsherConfig {
  const config: UsherConfig = { ...head.config, upstreams: dict(head.config.upstreams), routes };
  const rl = head.config.rate_limits;
  if (rl !== undefined) config.rate_limits = { ...rl, policies: dict(Object.entries(rl.policies)), stores: dict(Object.entries(rl.stores)) };
  return deepFreeze(config);
}
