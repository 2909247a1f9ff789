// `redirect:` — answers with a 3xx and a Location (RFC 9110 §15.4, §10.2.2) built from a
// template, or the same host and request URI over https. A request-phase filter.
import { parseTemplate } from '../../config/template.js';
import type { RouteConfig } from '../../config/types.js';
import type { RedirectAction } from './config.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { Filter, LocalResponse, RequestContext } from '../../pipeline/types.js';
import type { RouteRequest } from '../../router/request.js';
import { Template } from '../template.js';

const NO_HOST: LocalResponse = Object.freeze({ status: 400, headers: ['content-type', 'text/plain; charset=utf-8'], body: 'an https redirect needs a Host header\n', reason: 'bad_request' });

export class Redirect implements Filter {
  readonly name = 'redirect';
  private readonly to: Template | undefined;

  constructor(private readonly action: RedirectAction) {
    if (action.to !== undefined) {
      const t = parseTemplate(action.to);
      if (!t.ok) throw new Error(`usher config: unchecked template: ${t.message}`);
      this.to = new Template(t.parts);
    }
  }

  /** The Location for this request, or undefined when it cannot be built (https without a Host). */
  location(ctx: Pick<RequestContext, 'requestId' | 'clientAddress'>, rr: RouteRequest): string | undefined {
    if (this.to !== undefined) return this.to.render(ctx, rr);
    if (rr.host === '') return undefined;
    const port = this.action.https_port === undefined || this.action.https_port === 443 ? '' : `:${this.action.https_port}`;
    return `https://${rr.host}${port}${rr.uri}`;
  }

  request(ctx: RequestContext): LocalResponse {
    const location = this.location(ctx, ctx.request!);
    if (location === undefined) return NO_HOST;
    return { status: this.action.status, headers: ['location', location, 'content-length', '0'] };
  }

  explain(): string {
    return `redirect (${this.action.status} ${this.action.to ?? 'to https'})`;
  }
}

export const redirect: RouteFilterDefinition = {
  name: 'redirect',
  create: (rc: RouteConfig) => (rc.redirect === undefined ? undefined : new Redirect(rc.redirect)),
};
