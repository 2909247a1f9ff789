// The request path as phases (Pingora's names): request filters → upstream_peer (cluster.pick)
// → upstream request filters → response filters (reverse order) → logging. Filters are compiled
// into per-route phase arrays at load time, so an empty phase costs one length check and nothing
// is merged per request. Built-in filters arrive with the routing and security issues; the
// phase arrays and their call sites are here so they slot in without touching the proxy stage.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteConfig, SourceLocation } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import type { RouteRequest } from '../router/request.js';
import type { Cluster } from '../upstream/cluster.js';

/** The per-request state every phase sees. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Undefined only before routing (or when no route matched): filters always see one. */
  readonly route: CompiledRoute | undefined;
  readonly requestId: string;
  readonly clientIp: string;
  /** Set when the request ends with a local reply or an error; read by the logging phase. */
  reason: ReasonCode | undefined;
}

/** A reply a filter makes instead of proxying (auth denied, rate limited, redirect...). */
export interface LocalResponse {
  status: number;
  headers?: readonly string[];
  body?: string | Buffer;
}

export interface Filter {
  readonly name: string;
  /** May answer the request itself: return a LocalResponse to short-circuit. Synchronous by design. */
  onRequest?(ctx: RequestContext): LocalResponse | undefined;
  /** Last edits to the upstream head: a flat name/value array. */
  onUpstreamRequest?(ctx: RequestContext, headers: string[]): void;
  /** Edits to the response head before it goes downstream: a flat name/value array. */
  onResponse?(ctx: RequestContext, status: number, headers: string[]): void;
}

/** A `respond:` action, pre-rendered at load time. */
export interface CompiledRespond {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly source: SourceLocation;
  readonly config: RouteConfig;
  readonly cluster: Cluster | undefined;
  readonly respond: CompiledRespond | undefined;
  readonly requestFilters: readonly Filter[];
  readonly upstreamRequestFilters: readonly Filter[];
  /** Already in reverse declaration order (Envoy: response filters run backwards). */
  readonly responseFilters: readonly Filter[];
  /** A traffic split: picks the cluster for a request instead of `cluster` (src/router/split.ts). */
  readonly split?: ClusterChooser | undefined;
  /** The path (and query) sent upstream, when the route rewrites it (src/filters/rewrite/). */
  readonly rewrite?: PathRewriter | undefined;
  /** Copies requests to a shadow upstream (src/filters/mirror/). */
  readonly mirror?: RequestMirror | undefined;
}

export interface ClusterChooser {
  choose(rr: RouteRequest): Cluster | undefined;
}

export interface PathRewriter {
  /** The upstream target in origin-form: rewritten path plus the original query. */
  target(rr: RouteRequest): string;
}

/** A request the proxy stage has started. */
export interface ProxiedRequest extends RequestContext {
  /** A copy of the upstream head as the route sends it (forwarding headers, header rules). */
  upstreamHead(): string[];
}

export interface RequestMirror {
  /** Called after the main request was handed to the proxy stage; never blocks or fails it. */
  send(ctx: ProxiedRequest, rr: RouteRequest, target: string, hasBody: boolean): void;
}
