// The built-in route filters, in declaration order: a route's request-side hooks run in this
// order, its response-side hooks in the reverse (src/pipeline/compile.ts). Each filter's folder
// holds its factory and explain(); docs/filters.md says how to write one.
import type { RouteFilterDefinition } from '../pipeline/registry.js';
import { access } from './access/index.js';
import { auth, jwtAuth } from './auth/index.js';
import { cache } from './cache/index.js';
import { compress } from './compress/index.js';
import { cors } from './cors/index.js';
import { securityHeaders } from './security-headers/index.js';
import { requestHeaders, responseHeaders } from './headers/index.js';
import { mirror } from './mirror/index.js';
import { rateLimit } from './rate-limit/index.js';
import { redirect } from './redirect/index.js';
import { rewriteHost, rewritePath } from './rewrite/index.js';
import { split } from './split/index.js';
import { waf } from './waf/index.js';

export const ROUTE_FILTERS: readonly RouteFilterDefinition[] = Object.freeze([
  // request: the access list first (nothing else is told about a denied client)
  access,
  // request (phase 1), request_body and upstream_request (phase 2): next, so an attack is
  // refused before it costs anything else (auth, a token, a cache lookup) and before the
  // upstream_request hooks (header rules, rewrites) edit what the rules judged
  waf,
  // request: JWT auth before the rate limits, which may key on a verified claim; upstream_request:
  // claims onto the upstream request (before the header rules, which may still edit them)
  jwtAuth,
  // request: rate limits next, so a refused request costs nothing else
  rateLimit,
  // request: basic (and forward) auth after the rate limits, so a flood of guesses is refused
  // before it costs a bcrypt verification (or a subrequest); upstream_request: Authorization removed
  auth,
  // request (a preflight is answered here) and response (its fields on every reply, local ones and 429s too)
  cors,
  redirect,
  // upstream_peer
  split,
  // upstream_request: host, header rules, path; the mirror last, so it copies the final head
  rewriteHost,
  requestHeaders,
  rewritePath,
  mirror,
  // request (lookup: a hit answers here, after access, limits, CORS preflights and redirects),
  // upstream_request (validators), upstream_response (storable?), response and response_body:
  // before compress, so that in the reverse order its copy takes the compressed bytes and it
  // sees compression's edits of the head (each encoded variant is stored once)
  cache,
  // response and response_body (reverse order: compress runs last, so it sees the final head)
  compress,
  // response (reverse order: response_headers runs first, so that `upstream: keep` keeps its values)
  securityHeaders,
  responseHeaders,
]);
