// `auth:` — authentication per route, in the request phase: basic (basic.ts), jwt (jwt.ts),
// forward (forward.ts).
// Two definitions, at two places of the route's filter order (src/filters/index.ts).
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { BasicAuth } from './basic.js';
import { forwardAuth } from './forward.js';
import { JwtAuth } from './jwt.js';

/** basic and forward: after the route's rate limits, so that a flood of guesses is limited before it costs a bcrypt verification or a subrequest. */
export const auth: RouteFilterDefinition = {
  name: 'auth',
  create: (rc: RouteConfig, deps) => {
    if (rc.auth?.basic !== undefined) return new BasicAuth(rc.auth.basic);
    if (rc.auth?.forward !== undefined) return forwardAuth(rc.auth.forward, deps);
    return undefined;
  },
};

/** jwt: before the route's rate limits, so that a policy can key on a verified claim ({ jwt_claim }). */
export const jwtAuth: RouteFilterDefinition = {
  name: 'auth_jwt',
  create: (rc: RouteConfig, deps) => {
    const jwt = rc.auth?.jwt;
    if (jwt === undefined) return undefined;
    const up = jwt.key.kind === 'remote' ? jwt.key.upstream : undefined;
    return new JwtAuth(jwt, up === undefined ? undefined : deps.clusters.get(up));
  },
};
