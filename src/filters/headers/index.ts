// Request and response header rules (remove, set, add) with placeholders, compiled at load.
// Request rules edit the upstream head (upstream_request phase, after the forwarding headers);
// response rules every head that goes downstream (response phase: proxied and local replies).
import { parseTemplate } from '../../config/template.js';
import type { RouteConfig } from '../../config/types.js';
import type { HeaderRules } from './config.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { Filter, RequestContext, ResponseHead, UpstreamRequestHead } from '../../pipeline/types.js';
import { Template } from '../template.js';

interface Plan {
  readonly remove: ReadonlySet<string>;
  readonly set: readonly [string, Template][];
  readonly add: readonly [string, Template][];
}

function compile(rules: HeaderRules): Plan {
  const t = (text: string) => {
    const parsed = parseTemplate(text);
    if (!parsed.ok) throw new Error(`usher config: unchecked template: ${parsed.message}`);
    return new Template(parsed.parts);
  };
  // "set" removes every field of the name first, then adds one.
  const remove = new Set([...rules.remove, ...rules.set.map(([n]) => n)]);
  return { remove, set: rules.set.map(([n, v]) => [n, t(v)]), add: rules.add.map(([n, v]) => [n, t(v)]) };
}

/** Applies `plan` to flat `headers` in place. */
function applyHeaderPlan(plan: Plan, ctx: RequestContext, headers: string[]): void {
  if (plan.remove.size > 0) {
    let w = 0;
    for (let i = 0; i < headers.length; i += 2) {
      if (plan.remove.has(headers[i]!.toLowerCase())) continue;
      headers[w] = headers[i]!;
      headers[w + 1] = headers[i + 1]!;
      w += 2;
    }
    headers.length = w;
  }
  if (plan.set.length === 0 && plan.add.length === 0) return;
  const rr = ctx.request!;
  for (const [name, value] of plan.set) headers.push(name, value.render(ctx, rr));
  for (const [name, value] of plan.add) headers.push(name, value.render(ctx, rr));
}

function describe(rules: HeaderRules): string {
  const parts: string[] = [];
  if (rules.remove.length > 0) parts.push(`remove ${rules.remove.join(', ')}`);
  if (rules.set.length > 0) parts.push(`set ${rules.set.map(([n]) => n).join(', ')}`);
  if (rules.add.length > 0) parts.push(`add ${rules.add.map(([n]) => n).join(', ')}`);
  return parts.join('; ');
}

export class RequestHeaders implements Filter {
  readonly name = 'request_headers';
  private readonly plan: Plan;
  constructor(private readonly rules: HeaderRules) {
    this.plan = compile(rules);
  }
  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): void {
    applyHeaderPlan(this.plan, ctx, head.headers);
  }
  explain(): string {
    return `request_headers (${describe(this.rules)})`;
  }
}

export class ResponseHeaders implements Filter {
  readonly name = 'response_headers';
  private readonly plan: Plan;
  constructor(private readonly rules: HeaderRules) {
    this.plan = compile(rules);
  }
  response(ctx: RequestContext, head: ResponseHead): void {
    // A reply made before routing has no RouteRequest for placeholders; routes always do.
    if (ctx.request !== undefined) applyHeaderPlan(this.plan, ctx, head.headers);
  }
  explain(): string {
    return `response_headers (${describe(this.rules)})`;
  }
}

export const requestHeaders: RouteFilterDefinition = {
  name: 'request_headers',
  create: (rc: RouteConfig) => (rc.request_headers === undefined ? undefined : new RequestHeaders(rc.request_headers)),
};

export const responseHeaders: RouteFilterDefinition = {
  name: 'response_headers',
  create: (rc: RouteConfig) => (rc.response_headers === undefined ? undefined : new ResponseHeaders(rc.response_headers)),
};
