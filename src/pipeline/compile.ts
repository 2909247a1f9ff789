// Compiles a route's filters into its phase arrays, once per config. A filter lands in the array
// of every hook it implements, in declaration (registry) order; response-side phases run in the
// reverse order (Envoy: the filter that saw the request first sees the response last).
import type { RouteConfig } from '../config/types.js';
import type { RouteFilterDefinition, RouteFilterDeps } from './registry.js';
import type { CompiledRespond, CompiledRoute, Filter, ListenerChain, PhaseArrays } from './types.js';

export function compileRoute(
  rc: RouteConfig,
  definitions: readonly RouteFilterDefinition[],
  deps: RouteFilterDeps,
  respond: CompiledRespond | undefined,
): CompiledRoute {
  const filters: Filter[] = [];
  for (const d of definitions) {
    const f = d.create(rc, deps);
    if (f !== undefined) filters.push(f);
  }
  const phases = phaseArrays(filters);
  let requestBodyLimit = 0;
  for (const f of phases.requestBody) requestBodyLimit = Math.max(requestBodyLimit, f.requestBody!.maxBytes);
  return Object.freeze({
    name: rc.name,
    index: rc.index,
    source: rc.source,
    config: rc,
    cluster: rc.upstream === undefined ? undefined : deps.clusters.get(rc.upstream),
    respond,
    filters: filters.length === 0 ? NONE : Object.freeze(filters),
    phases,
    requestBodyLimit,
    meters: { value: null },
  });
}

const NONE: readonly Filter[] = Object.freeze([]);
/** What a route without filters shares: most routes have none, and a reload to 20k routes allocated 8 arrays each (issue #11). */
const NO_PHASES: PhaseArrays = Object.freeze({
  request: NONE,
  requestBody: NONE,
  upstreamPeer: NONE,
  upstreamRequest: NONE,
  upstreamResponse: NONE,
  responseInspect: NONE,
  upstreamFailed: NONE,
  response: NONE,
  responseBody: NONE,
  done: NONE,
});

export function phaseArrays(filters: readonly Filter[]): PhaseArrays {
  if (filters.length === 0) return NO_PHASES;
  const has = (pick: (f: Filter) => unknown, reverse = false) => {
    const found = filters.filter((f) => pick(f) !== undefined);
    if (found.length === 0) return NONE;
    return Object.freeze(reverse ? found.reverse() : found);
  };
  return Object.freeze({
    request: has((f) => f.request),
    requestBody: has((f) => f.requestBody),
    upstreamPeer: has((f) => f.upstreamPeer),
    upstreamRequest: has((f) => f.upstreamRequest),
    upstreamResponse: has((f) => f.upstreamResponse, true),
    responseInspect: has((f) => f.responseInspect),
    upstreamFailed: has((f) => f.upstreamFailed, true),
    response: has((f) => f.response, true),
    responseBody: has((f) => f.responseBody, true),
    done: has((f) => f.done),
  });
}

/** A listener's filters by phase: early_request in order, response and done as for routes. */
export function listenerChain(filters: readonly (Filter | undefined)[]): ListenerChain {
  const p = phaseArrays(filters.filter((f): f is Filter => f !== undefined));
  const early = Object.freeze(filters.filter((f): f is Filter => f !== undefined && f.earlyRequest !== undefined));
  return Object.freeze({ early, response: p.response, done: p.done });
}

export const NO_LISTENER_FILTERS: ListenerChain = listenerChain([]);
