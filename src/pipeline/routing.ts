// Compiles a route's routing actions (issue #3) into its CompiledRoute, once per config:
// header rules and host rewrite as filters in the phase arrays, a redirect as the last request
// filter, the path rewrite, the traffic split and the mirror. Filters already in `base` (from
// other features) keep their place: routing's are declared last, so its request filters run
// last and its response filters first (response filters run in reverse declaration order).
import type { RouteConfig } from '../config/types.js';
import { RequestHeaders, ResponseHeaders } from '../filters/headers/index.js';
import { Mirror } from '../filters/mirror/index.js';
import { Redirect } from '../filters/redirect/index.js';
import { HostRewrite, PathRewrite } from '../filters/rewrite/index.js';
import { Split } from '../router/split.js';
import type { Cluster } from '../upstream/cluster.js';
import type { CompiledRoute, Filter } from './types.js';

export function withRouting(base: CompiledRoute, rc: RouteConfig, clusters: ReadonlyMap<string, Cluster>): CompiledRoute {
  const request: Filter[] = [];
  const upstreamRequest: Filter[] = [];
  const response: Filter[] = [];
  if (rc.rewrite?.host !== undefined) upstreamRequest.push(new HostRewrite(rc.rewrite.host));
  if (rc.request_headers !== undefined) upstreamRequest.push(new RequestHeaders(rc.request_headers));
  if (rc.response_headers !== undefined) response.push(new ResponseHeaders(rc.response_headers));
  if (rc.redirect !== undefined) request.push(new Redirect(rc.redirect));
  const rewrite = rc.rewrite !== undefined && (rc.rewrite.strip_prefix !== undefined || rc.rewrite.add_prefix !== undefined || rc.rewrite.regex !== undefined) ? new PathRewrite(rc.rewrite) : undefined;
  const split = rc.split === undefined ? undefined : new Split(rc.split.map((s) => ({ cluster: clusters.get(s.upstream)!, weight: s.weight })), rc.sticky_key);
  const mirror = rc.mirror === undefined ? undefined : new Mirror(rc.mirror, clusters.get(rc.mirror.upstream)!);
  if (request.length + upstreamRequest.length + response.length === 0 && rewrite === undefined && split === undefined && mirror === undefined) return base;
  return Object.freeze({
    ...base,
    requestFilters: Object.freeze([...base.requestFilters, ...request]),
    upstreamRequestFilters: Object.freeze([...base.upstreamRequestFilters, ...upstreamRequest]),
    responseFilters: Object.freeze([...response.reverse(), ...base.responseFilters]),
    split,
    rewrite,
    mirror,
  });
}
