// Request and response header rules (remove, set, add) with placeholders, compiled at load.
// They edit the flat name/value arrays of the proxy stage: request rules run as the last edit of
// the upstream head (after the forwarding headers), response rules on the upstream's response.
import { parseTemplate } from '../../config/template.js';
import type { HeaderRules } from '../../config/types.js';
import type { Filter, RequestContext } from '../../pipeline/types.js';
import { routeRequestOf, Template } from '../template.js';

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
export function applyHeaderPlan(plan: Plan, ctx: Pick<RequestContext, 'req' | 'requestId' | 'clientIp'>, headers: string[]): void {
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
  const rr = routeRequestOf(ctx);
  for (const [name, value] of plan.set) headers.push(name, value.render(ctx, rr));
  for (const [name, value] of plan.add) headers.push(name, value.render(ctx, rr));
}

export class RequestHeaders implements Filter {
  readonly name = 'request_headers';
  private readonly plan: Plan;
  constructor(rules: HeaderRules) {
    this.plan = compile(rules);
  }
  onUpstreamRequest(ctx: RequestContext, headers: string[]): void {
    applyHeaderPlan(this.plan, ctx, headers);
  }
  /** For `usher explain`. */
  apply(ctx: Pick<RequestContext, 'req' | 'requestId' | 'clientIp'>, headers: string[]): void {
    applyHeaderPlan(this.plan, ctx, headers);
  }
}

export class ResponseHeaders implements Filter {
  readonly name = 'response_headers';
  private readonly plan: Plan;
  constructor(rules: HeaderRules) {
    this.plan = compile(rules);
  }
  onResponse(ctx: RequestContext, _status: number, headers: string[]): void {
    applyHeaderPlan(this.plan, ctx, headers);
  }
}
