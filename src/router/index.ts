export { HostPathRouter, prefixMatches, routingHost } from './router.js';
export type { Router } from './router.js';
