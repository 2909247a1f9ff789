// The matchers of a route beyond host and path, compiled once: method, headers, query, cookies,
// client_ip. Each can say why it did not match (for `usher explain`).
import { BlockList, isIP } from 'node:net';
import type { FieldCondition, RouteMatch } from '../config/types.js';
import type { RouteRequest } from './request.js';

export interface Condition {
  test(rr: RouteRequest): boolean;
  /** Why `rr` fails this condition, in words (only called when test() is false). */
  why(rr: RouteRequest): string;
}

class MethodCondition implements Condition {
  constructor(private readonly methods: readonly string[]) {}
  test(rr: RouteRequest): boolean {
    return this.methods.includes(rr.method);
  }
  why(rr: RouteRequest): string {
    return `method ${rr.method} is not ${this.methods.join(' or ')}`;
  }
}

type Lookup = 'header' | 'cookie' | 'query';

class FieldMatch implements Condition {
  private readonly regex: RegExp | undefined;
  constructor(
    private readonly scope: Lookup,
    private readonly c: FieldCondition,
  ) {
    this.regex = c.regex === undefined ? undefined : new RegExp(c.regex);
  }
  private value(rr: RouteRequest): string | undefined {
    return this.scope === 'header' ? rr.header(this.c.name) : this.scope === 'cookie' ? rr.cookie(this.c.name) : rr.queryParam(this.c.name);
  }
  test(rr: RouteRequest): boolean {
    const v = this.value(rr);
    if (this.c.exact !== undefined) return v === this.c.exact;
    if (this.regex !== undefined) return v !== undefined && this.regex.test(v);
    return (v !== undefined) === (this.c.present ?? true);
  }
  why(rr: RouteRequest): string {
    const v = this.value(rr);
    const what = `${this.scope} ${this.c.name}`;
    const got = v === undefined ? 'absent' : JSON.stringify(v);
    if (this.c.exact !== undefined) return `${what} is ${got}, wanted ${JSON.stringify(this.c.exact)}`;
    if (this.regex !== undefined) return `${what} is ${got}, wanted a match of /${this.c.regex}/`;
    return this.c.present === false ? `${what} is present (${got}), wanted absent` : `${what} is absent, wanted present`;
  }
}

class ClientIpCondition implements Condition {
  private readonly list = new BlockList();
  constructor(private readonly cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [addr, bits] = cidr.split('/') as [string, string];
      this.list.addSubnet(addr, Number(bits), isIP(addr) === 6 ? 'ipv6' : 'ipv4');
    }
  }
  test(rr: RouteRequest): boolean {
    let ip = rr.clientIp;
    // An IPv4 client on a dual-stack listener shows as "::ffff:10.1.2.3": match it as IPv4 too.
    if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
    const family = isIP(ip);
    if (family === 0) return false;
    return this.list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }
  why(rr: RouteRequest): string {
    return `client ${rr.clientIp || '(unknown)'} is not in ${this.cidrs.join(', ')}`;
  }
}

/** Conditions in the order they are cheapest to test. */
export function compileConditions(m: RouteMatch): Condition[] {
  const out: Condition[] = [];
  if (m.methods !== undefined) out.push(new MethodCondition(m.methods));
  for (const c of m.headers ?? []) out.push(new FieldMatch('header', c));
  for (const c of m.query ?? []) out.push(new FieldMatch('query', c));
  for (const c of m.cookies ?? []) out.push(new FieldMatch('cookie', c));
  if (m.client_ip !== undefined) out.push(new ClientIpCondition(m.client_ip));
  return out;
}
