export { HostPathRouter, prefixMatches, routingHost } from './router.js';
export type { Candidate, Router } from './router.js';
export { routeRequestFor, RouteRequest, splitHost, validHost } from './request.js';
export { normalisePath } from './normalize.js';
