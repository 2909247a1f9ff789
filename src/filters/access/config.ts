// The `access:` section, of a listener or of a route: its schema part, normalised form and
// checks. The filters (index.ts) compile the normalised AccessConfig into an AccessList
// (matcher.ts).
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type ErrorFn, type RouteCheck } from '../../config/check-kit.js';
import { parseTrustedProxy } from '../../config/address.js';
import { object, stringEnum } from '../../config/schema-kit.js';
import type { Segment } from '../../config/issues.js';

export type AccessPolicy = 'allow' | 'deny';

const Cidrs = (what: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description: `${what}: an IP address or CIDR range ("10.0.0.0/8", "2001:db8::/32"), or a list of them.`,
    'x-usher-expected': 'an IP address or CIDR range, or a list of them',
  });

const Rule = object(
  { allow: Type.Optional(Cidrs('Clients to let through')), deny: Type.Optional(Cidrs('Clients to refuse')) },
  { description: 'One rule: exactly one of `allow` or `deny`.' },
);

export const AccessSchema = object(
  {
    allow: Type.Optional(Cidrs('Clients to let through; everyone else is denied (unless `default: allow`)')),
    deny: Type.Optional(Cidrs('Clients to refuse; everyone else is let through (unless `default: deny`)')),
    rules: Type.Optional(
      Type.Array(Rule, {
        minItems: 1,
        description: 'Rules in order, as nginx\'s allow/deny: the first rule that matches the client decides. Instead of `allow` and `deny`.',
      }),
    ),
    default: Type.Optional(
      stringEnum(['allow', 'deny'] as const, {
        description: 'What happens to a client no rule matches. Default: deny when any rule allows (an allow list), allow otherwise (a deny list).',
      }),
    ),
  },
  {
    description:
      'An IP access list, judged on the client\'s address after `proxy.trusted_proxies` (the one X-Real-IP carries upstream). An IPv4 client that shows as ::ffff:a.b.c.d matches IPv4 rules; IPv6 rules match IPv6 clients only. On a listener, a denied client\'s connection is closed when it is accepted, before any HTTP; a connection from a trusted proxy is judged per request instead, on the address it forwards, and a denied request gets 403 access_denied. On a route, a denied request gets 403 access_denied.',
  },
);

export type AccessInput = Static<typeof AccessSchema>;

/** The normalised list: rules in order (CIDRs as "10.0.0.0/8", "::1/128"), then the default. */
export interface AccessConfig {
  rules: { action: AccessPolicy; cidr: string }[];
  default: AccessPolicy;
}

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : v);

export function normalizeAccess(a: AccessInput): AccessConfig {
  const rules: AccessConfig['rules'] = [];
  const push = (action: AccessPolicy, v: string | string[] | undefined) => {
    for (const c of asList(v)) {
      const r = parseTrustedProxy(c);
      if (!r.ok) throw new Error(`usher config: unchecked access rule: ${r.message}`);
      rules.push({ action, cidr: r.cidr });
    }
  };
  if (a.rules !== undefined) for (const r of a.rules) push(r.allow !== undefined ? 'allow' : 'deny', r.allow ?? r.deny);
  else {
    push('allow', a.allow);
    push('deny', a.deny);
  }
  return { rules, default: a.default ?? (rules.some((r) => r.action === 'allow') ? 'deny' : 'allow') };
}

/** Checks an `access` section written at `at` (a listener's or a route's). */
export function checkAccessSection(a: unknown, at: Segment[], error: ErrorFn): void {
  if (!isRec(a)) return;
  const cidrs = (v: unknown, where: Segment[]) => {
    if (typeof v === 'string') return cidr(v, where);
    list(v).forEach((c, i) => typeof c === 'string' && cidr(c, [...where, i]));
  };
  const cidr = (c: string, where: Segment[]) => {
    const r = parseTrustedProxy(c);
    if (!r.ok) error(where, r.message, r.hint);
  };
  if (a.rules !== undefined && (a.allow !== undefined || a.deny !== undefined)) {
    error([...at, 'rules'], '"rules" replaces "allow" and "deny": write every rule under "rules"', undefined, 'key');
  } else if (a.allow !== undefined && a.deny !== undefined) {
    error([...at, 'deny'], 'with both "allow" and "deny" the order matters: write them as "rules" (the first match wins)', 'rules: [{ deny: "10.9.0.0/16" }, { allow: "10.0.0.0/8" }]', 'key');
  }
  if (a.rules === undefined && a.allow === undefined && a.deny === undefined && a.default === undefined) {
    error(at, 'an access list needs "allow", "deny" or "rules" (or a "default")');
  }
  cidrs(a.allow, [...at, 'allow']);
  cidrs(a.deny, [...at, 'deny']);
  list(a.rules).forEach((r, i) => {
    if (!isRec(r)) return;
    const where = [...at, 'rules', i];
    if ((r.allow === undefined) === (r.deny === undefined)) error(where, 'a rule takes exactly one of "allow" or "deny"');
    cidrs(r.allow, [...where, 'allow']);
    cidrs(r.deny, [...where, 'deny']);
  });
}

export const checkAccess: RouteCheck = (route, path, { error }) => checkAccessSection(route.access, [...path, 'access'], error);
