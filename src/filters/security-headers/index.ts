// `security_headers:` — X-Content-Type-Options, X-Frame-Options, Referrer-Policy,
// Content-Security-Policy and Permissions-Policy on every head that goes downstream (response
// phase: proxied and local replies). On a route, and on a listener for every response of it
// (routed or not, e.g. a 404 no_route); a route's section replaces its listener's.
import type { ListenerConfig, RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { stateKey, type Filter, type RequestContext, type ResponseHead } from '../../pipeline/types.js';
import type { SecurityHeaders } from './config.js';

/** Set when the route's own section applied: the listener's then stays out. */
const kRouteApplied = stateKey<true>('security_headers.route');

function apply(rules: SecurityHeaders, h: string[]): void {
  for (const [name, value] of rules.fields) {
    let found = -1;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i]!.length !== name.length || h[i]!.toLowerCase() !== name) continue;
      if (found < 0) found = i;
      else if (rules.upstream === 'replace') {
        h.splice(i, 2);
        i -= 2;
      }
    }
    if (found < 0) h.push(name, value);
    else if (rules.upstream === 'replace') h[found + 1] = value;
  }
}

function describe(rules: SecurityHeaders): string {
  return `${rules.fields.map(([n]) => n).join(', ')}; upstream values: ${rules.upstream}`;
}

export class RouteSecurityHeaders implements Filter {
  readonly name = 'security_headers';
  constructor(private readonly rules: SecurityHeaders) {}

  response(ctx: RequestContext, head: ResponseHead): void {
    ctx.set(kRouteApplied, true);
    apply(this.rules, head.headers);
  }

  explain(): string {
    return `security_headers (${describe(this.rules)})`;
  }
}

export class ListenerSecurityHeaders implements Filter {
  readonly name = 'listener_security_headers';
  constructor(public rules: SecurityHeaders) {}

  response(ctx: RequestContext, head: ResponseHead): void {
    if (ctx.get(kRouteApplied) === true) return;
    apply(this.rules, head.headers);
  }

  explain(): string {
    return `listener security_headers (${describe(this.rules)})`;
  }
}

export function listenerSecurityHeaders(config: ListenerConfig): ListenerSecurityHeaders | undefined {
  return config.security_headers === undefined ? undefined : new ListenerSecurityHeaders(config.security_headers);
}

export const securityHeaders: RouteFilterDefinition = {
  name: 'security_headers',
  create: (rc: RouteConfig) => (rc.security_headers === undefined ? undefined : new RouteSecurityHeaders(rc.security_headers)),
};
