// The sections of a route's filters, normalised by their own normalizers
// (src/filters/<name>/config.ts). Runs after schema and checks passed (normalize.ts).
import { DEFAULTS, type ConfigInput } from './schema.js';
import type { RouteConfig } from './types.js';
import { normalizeAccess } from '../filters/access/config.js';
import { normalizeAuth } from '../filters/auth/config.js';
import { normalizeRouteCache } from '../filters/cache/config.js';
import { normalizeRouteWaf } from '../filters/waf/config.js';
import { normalizeCompress } from '../filters/compress/config.js';
import { normalizeCors } from '../filters/cors/config.js';
import { normalizeSecurityHeaders } from '../filters/security-headers/config.js';
import { normalizeHeaderRules } from '../filters/headers/config.js';
import { normalizeMirror } from '../filters/mirror/config.js';
import { normalizeRedirect } from '../filters/redirect/config.js';
import { normalizeRewrite } from '../filters/rewrite/config.js';
import { normalizeSplit, normalizeStickyKey } from '../filters/split/config.js';

type RouteInput = NonNullable<ConfigInput['routes']>[number];

/**
 * The actions and options of a route beyond upstream/respond: the sections of its filters.
 * `filePath` resolves a path written in the config against the config file's directory.
 */
export function normalizeRouteActions(r: RouteInput, top: ConfigInput, filePath: (p: string) => string): Partial<RouteConfig> {
  const out: Partial<RouteConfig> = {};
  // Only when given, so configs without priorities normalise as before (the router reads `?? 0`).
  if (r.priority !== undefined && r.priority !== DEFAULTS.route.priority) out.priority = r.priority;
  if (r.split !== undefined) out.split = normalizeSplit(r.split);
  if (r.sticky_key !== undefined) out.sticky_key = normalizeStickyKey(r.sticky_key);
  if (r.redirect !== undefined) out.redirect = normalizeRedirect(r.redirect);
  if (r.rewrite !== undefined) out.rewrite = normalizeRewrite(r.rewrite);
  if (r.request_headers !== undefined) out.request_headers = normalizeHeaderRules(r.request_headers);
  if (r.response_headers !== undefined) out.response_headers = normalizeHeaderRules(r.response_headers);
  if (r.mirror !== undefined) out.mirror = normalizeMirror(r.mirror);
  if (r.access !== undefined) out.access = normalizeAccess(r.access);
  if (r.auth !== undefined) out.auth = normalizeAuth(r.auth, filePath);
  if (r.cors !== undefined) out.cors = normalizeCors(r.cors);
  if (r.security_headers !== undefined) out.security_headers = normalizeSecurityHeaders(r.security_headers);
  if (r.rate_limits !== undefined) out.rate_limits = [...r.rate_limits];
  if (r.upstream !== undefined || r.split !== undefined) {
    const compress = normalizeCompress(r.compress, top.compress);
    if (compress !== undefined) out.compress = compress;
    const cache = normalizeRouteCache(r.cache);
    if (cache !== undefined) out.cache = cache;
    const waf = normalizeRouteWaf(r.waf, top.waf);
    if (waf !== undefined) out.waf = waf;
  }
  return out;
}
