// The `security_headers:` section, of a route or of a listener: its schema part, defaults,
// normalised form and checks. The filters (index.ts) read the normalised SecurityHeaders.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, type ErrorFn, type RouteCheck } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { object, stringEnum } from '../../config/schema-kit.js';

/** What `security_headers: {}` sets: the ones that never break a site. */
export const SECURITY_DEFAULTS = {
  content_type_options: 'nosniff',
  frame_options: 'SAMEORIGIN',
  referrer_policy: 'strict-origin-when-cross-origin',
  content_security_policy: null,
  permissions_policy: null,
  upstream: 'replace',
} as const;

const REFERRER_POLICIES = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'origin',
  'origin-when-cross-origin',
  'same-origin',
  'strict-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
] as const;

const orNull = <T extends readonly string[]>(values: T, description: string, dflt: string | null) =>
  Type.Union([stringEnum(values, {}), Type.Null()], { description: `${description} null: not set.`, default: dflt, 'x-usher-expected': `${values.map((v) => `"${v}"`).join(', ')} or null` });
const text = (description: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Null()], { description: `${description} null: not set.`, default: null });

export const SecurityHeadersSchema = object(
  {
    content_type_options: Type.Optional(orNull(['nosniff'] as const, 'X-Content-Type-Options.', SECURITY_DEFAULTS.content_type_options)),
    frame_options: Type.Optional(orNull(['DENY', 'SAMEORIGIN'] as const, 'X-Frame-Options: whether other sites may frame the page.', SECURITY_DEFAULTS.frame_options)),
    referrer_policy: Type.Optional(orNull(REFERRER_POLICIES, 'Referrer-Policy.', SECURITY_DEFAULTS.referrer_policy)),
    content_security_policy: Type.Optional(text('Content-Security-Policy, as written ("default-src \'self\'").')),
    permissions_policy: Type.Optional(text('Permissions-Policy, as written ("geolocation=(), camera=()").')),
    upstream: Type.Optional(
      stringEnum(['replace', 'keep'] as const, {
        default: SECURITY_DEFAULTS.upstream,
        description:
          'When the upstream sent one of these fields itself: replace (usher\'s value wins, as Traefik\'s headers middleware and Caddy\'s header directive do) or keep (the upstream\'s value stays; usher fills in only what is missing, as Caddy\'s "?Field").',
      }),
    ),
  },
  {
    description:
      'Security response headers on every response of the route (or listener) — proxied or made by usher. `security_headers: {}` sets X-Content-Type-Options: nosniff, X-Frame-Options: SAMEORIGIN and Referrer-Policy: strict-origin-when-cross-origin; Content-Security-Policy and Permissions-Policy only when given. A route\'s section replaces its listener\'s.',
  },
);

export type SecurityHeadersInput = Static<typeof SecurityHeadersSchema>;

export interface SecurityHeaders {
  /** Lower-case name and value, in a fixed order. */
  fields: [string, string][];
  upstream: 'replace' | 'keep';
}

export function normalizeSecurityHeaders(s: SecurityHeadersInput): SecurityHeaders {
  const fields: [string, string][] = [];
  const add = (name: string, v: string | null | undefined, dflt: string | null) => {
    const value = v === undefined ? dflt : v;
    if (value !== null) fields.push([name, value]);
  };
  add('x-content-type-options', s.content_type_options, SECURITY_DEFAULTS.content_type_options);
  add('x-frame-options', s.frame_options, SECURITY_DEFAULTS.frame_options);
  add('referrer-policy', s.referrer_policy, SECURITY_DEFAULTS.referrer_policy);
  add('content-security-policy', s.content_security_policy, SECURITY_DEFAULTS.content_security_policy);
  add('permissions-policy', s.permissions_policy, SECURITY_DEFAULTS.permissions_policy);
  return { fields, upstream: s.upstream ?? SECURITY_DEFAULTS.upstream };
}

/** Checks a `security_headers` section written at `at` (a listener's or a route's). */
export function checkSecurityHeadersSection(s: unknown, at: Segment[], error: ErrorFn): void {
  if (!isRec(s)) return;
  for (const key of ['content_security_policy', 'permissions_policy']) {
    const v = s[key];
    if (typeof v === 'string' && /[^\t\x20-\x7e\x80-\xff]/.test(v)) error([...at, key], `expected a header value without line breaks or control characters, got ${JSON.stringify(v)}`);
  }
}

export const checkSecurityHeaders: RouteCheck = (route, path, { error }) => checkSecurityHeadersSection(route.security_headers, [...path, 'security_headers'], error);
