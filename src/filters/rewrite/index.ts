// `rewrite:` — the path sent upstream (strip a prefix, add a prefix, a regex replace with
// captures; in that order, on the normalised path; the query is kept) and the Host sent upstream.
import type { RewriteAction } from '../../config/types.js';
import type { Filter, PathRewriter, RequestContext } from '../../pipeline/types.js';
import type { RouteRequest } from '../../router/request.js';

export class PathRewrite implements PathRewriter {
  private readonly strip: string | undefined;
  private readonly add: string | undefined;
  private readonly regex: RegExp | undefined;
  private readonly replace: string;

  constructor(action: RewriteAction) {
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
}

/** Replaces the Host sent upstream (the proxy stage added it as "host"). */
export class HostRewrite implements Filter {
  readonly name = 'rewrite_host';
  constructor(readonly host: string) {}
  onUpstreamRequest(_ctx: RequestContext, headers: string[]): void {
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'host') {
        headers[i + 1] = this.host;
        return;
      }
    }
  }
}
