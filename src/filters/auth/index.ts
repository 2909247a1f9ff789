// `auth:` — authentication per route, in the request phase: basic (basic.ts).
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { BasicAuth } from './basic.js';

/** basic and forward: after the route's rate limits, so that a flood of guesses is limited before it costs a bcrypt verification or a subrequest. */
export const auth: RouteFilterDefinition = {
  name: 'auth',
  create: (rc: RouteConfig) => (rc.auth?.basic === undefined ? undefined : new BasicAuth(rc.auth.basic)),
};
