// `access:` — IP allow/deny lists (config.ts; the matcher in matcher.ts), judged on the client's
// address after `proxy.trusted_proxies` (RequestContext.clientAddress).
//
// On a route: a request-phase filter; a denied request gets 403 access_denied (a local reply,
// so it passes the route's response phase: CORS fields, security headers).
//
// On a listener, in two steps, because at accept time only the TCP peer is known:
//   - accept: a peer that is not a trusted proxy is its own client, so it is judged there and a
//     denied one's connection is closed before a byte of HTTP is read (Listener's gate). A peer
//     that is a trusted proxy speaks for many clients: it is let through, not judged.
//   - early_request: every request is judged on its client address. From a trusted proxy that
//     is the forwarded one (or the proxy's own when it forwarded none); a denied request gets
//     403 access_denied and the connection stays open, since the proxy's other clients share it.
//     For other peers this repeats the accept decision, which keeps a reload honest: a
//     connection accepted under the previous lists (or trusted_proxies) is judged by the new ones.
import type { ListenerConfig, RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { Filter, LocalResponse, RequestContext } from '../../pipeline/types.js';
import { localReplyFor, wantsJson } from '../../proxy/local-reply.js';
import type { AccessConfig } from './config.js';
import { AccessList } from './matcher.js';

export { AccessList, type AccessDecision } from './matcher.js';

/** 403 access_denied in usher's error form (text or JSON, with the request id). */
function denied(ctx: RequestContext): LocalResponse {
  return { ...localReplyFor('access_denied', ctx.requestId, wantsJson(ctx.headers)), reason: 'access_denied' };
}

/** A route's access list (request phase). */
export class RouteAccess implements Filter {
  readonly name = 'access';
  readonly list: AccessList;

  constructor(config: AccessConfig) {
    this.list = new AccessList(config);
  }

  request(ctx: RequestContext): LocalResponse | undefined {
    return this.list.decide(ctx.clientAddress).allow ? undefined : denied(ctx);
  }

  explain(): string {
    return `access (${this.list.describe()})`;
  }
}

/** A listener's access list: the accept-time gate and the early_request check. */
export class ListenerAccess implements Filter {
  readonly name = 'listener_access';
  list: AccessList;

  constructor(config: AccessConfig) {
    this.list = new AccessList(config);
  }

  /** A reload with a changed list: open connections' next requests are judged by it. */
  update(config: AccessConfig): void {
    if (config !== this.list.config) this.list = new AccessList(config);
  }

  earlyRequest(ctx: RequestContext): LocalResponse | undefined {
    return this.list.decide(ctx.clientAddress).allow ? undefined : denied(ctx);
  }

  explain(): string {
    return `listener access (${this.list.describe()})`;
  }
}

/** The listener's access filter, or undefined when it has no `access` section. */
export function listenerAccess(config: ListenerConfig): ListenerAccess | undefined {
  return config.access === undefined ? undefined : new ListenerAccess(config.access);
}

export const access: RouteFilterDefinition = {
  name: 'access',
  create: (rc: RouteConfig) => (rc.access === undefined ? undefined : new RouteAccess(rc.access)),
};
