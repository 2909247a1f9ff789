// Renders a template parsed at load (src/config/template.ts) for one request. A value that is
// missing (no such header, cookie or parameter) renders as "".
import type { TemplatePart } from '../config/template.js';
import type { RequestContext } from '../pipeline/types.js';
import type { RouteRequest } from '../router/request.js';

export class Template {
  /** The template is plain text: render() returns it as is. */
  readonly constant: string | undefined;

  constructor(private readonly parts: readonly TemplatePart[]) {
    this.constant = parts.every((p) => p.kind === 'text') ? parts.map((p) => (p.kind === 'text' ? p.text : '')).join('') : undefined;
  }

  render(ctx: Pick<RequestContext, 'requestId' | 'clientAddress'>, rr: RouteRequest): string {
    if (this.constant !== undefined) return this.constant;
    let out = '';
    for (const p of this.parts) {
      switch (p.kind) {
        case 'text':
          out += p.text;
          break;
        case 'client_ip':
          out += ctx.clientAddress;
          break;
        case 'request_id':
          out += ctx.requestId;
          break;
        case 'host':
          out += rr.host;
          break;
        case 'path':
          out += rr.path;
          break;
        case 'request_uri':
          out += rr.uri;
          break;
        case 'query_string':
          out += rr.query;
          break;
        case 'scheme':
          out += rr.scheme;
          break;
        case 'header':
          out += rr.header(p.name) ?? '';
          break;
        case 'cookie':
          out += rr.cookie(p.name) ?? '';
          break;
        case 'query':
          out += rr.queryParam(p.name) ?? '';
          break;
      }
    }
    return safeFieldValue(out);
  }
}

/**
 * A rendered value goes into a header field (RFC 9110 §5.5): a CR, LF, NUL or other control
 * character taken from the request would split or corrupt the head. node:http's parser refuses
 * them in targets and header values today; this holds whatever parser or source (a trusted
 * proxy's header, a future placeholder) fed the value: they are percent-encoded ("%0D%0A").
 */
export function safeFieldValue(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return v.replace(CONTROL, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  }
  return v;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;
