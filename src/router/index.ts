export { HostPathRouter, prefixMatches, routingHost } from './router.js';
export type { Candidate, Router } from './router.js';
export { attachRouteRequest, kRouteRequest, RouteRequest, splitHost, validHost } from './request.js';
export { normalisePath } from './normalize.js';
