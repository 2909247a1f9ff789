// `rewrite:` — the path sent upstream (strip a prefix, add a prefix, a regex replace with
// captures; in that order, on the normalised path; the query is kept) and the Host sent upstream.
// Both are upstream_request filters.
import type { RouteConfig } from '../../config/types.js';
import type { RewriteAction } from './config.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { Filter, RequestContext, UpstreamRequestHead } from '../../pipeline/types.js';
import type { RouteRequest } from '../../router/request.js';

export class PathRewrite implements Filter {
  readonly name = 'rewrite_path';
  private readonly strip: string | undefined;
  private readonly add: string | undefined;
  private readonly regex: RegExp | undefined;
  private readonly replace: string;

  constructor(private readonly action: RewriteAction) {
    const strip = action.strip_prefix;
    this.strip = strip === undefined || strip === '/' ? undefined : strip.endsWith('/') ? strip.slice(0, -1) : strip;
    this.add = action.add_prefix === undefined || action.add_prefix === '/' ? undefined : action.add_prefix.replace(/\/$/, '');
    this.regex = action.regex === undefined ? undefined : new RegExp(action.regex.pattern);
    this.replace = action.regex?.replace ?? '';
  }

  path(path: string): string {
    let p = path;
    const s = this.strip;
    // On a segment boundary: "/api" strips "/api" and "/api/x" (→ "/", "/x"), not "/apix"; and,
    // as routes match without ";params", "/api;v=1/x" (→ "/x": the params go with their segment).
    if (s !== undefined && p.startsWith(s)) {
      const next = p.length === s.length ? 47 : p.charCodeAt(s.length);
      if (next === 47) p = p.length === s.length ? '/' : p.slice(s.length);
      else if (next === 59 /* ; */) {
        const slash = p.indexOf('/', s.length);
        p = slash < 0 ? '/' : p.slice(slash);
      }
    }
    if (this.add !== undefined) p = p === '/' ? `${this.add}/` : `${this.add}${p}`;
    if (this.regex !== undefined) p = p.replace(this.regex, this.replace);
    // A replacement may produce an empty or relative path: origin-form needs a leading "/" (RFC 9112 §3.2.1).
    return p.charCodeAt(0) === 47 ? p : `/${p}`;
  }

  target(rr: RouteRequest): string {
    const p = this.path(rr.path);
    return rr.query === '' ? p : `${p}?${rr.query}`;
  }

  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): void {
    head.target = this.target(ctx.request!);
  }

  explain(): string {
    const a = this.action;
    const parts: string[] = [];
    if (a.strip_prefix !== undefined) parts.push(`strip ${a.strip_prefix}`);
    if (a.add_prefix !== undefined) parts.push(`add ${a.add_prefix}`);
    if (a.regex !== undefined) parts.push(`s/${a.regex.pattern}/${a.regex.replace}/`);
    return `rewrite_path (${parts.join(', ')})`;
  }
}

/** Replaces the Host sent upstream (the proxy stage added it as "host"). */
export class HostRewrite implements Filter {
  readonly name = 'rewrite_host';
  constructor(readonly host: string) {}
  upstreamRequest(_ctx: RequestContext, head: UpstreamRequestHead): void {
    const headers = head.headers;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'host') {
        headers[i + 1] = this.host;
        return;
      }
    }
  }
  explain(): string {
    return `rewrite_host (${this.host})`;
  }
}

export const rewriteHost: RouteFilterDefinition = {
  name: 'rewrite_host',
  create: (rc: RouteConfig) => (rc.rewrite?.host === undefined ? undefined : new HostRewrite(rc.rewrite.host)),
};

export const rewritePath: RouteFilterDefinition = {
  name: 'rewrite_path',
  create: (rc: RouteConfig) => {
    const r = rc.rewrite;
    return r !== undefined && (r.strip_prefix !== undefined || r.add_prefix !== undefined || r.regex !== undefined) ? new PathRewrite(r) : undefined;
  },
};
