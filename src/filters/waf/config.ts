// The `waf:` section (the rule set and its settings, loaded once per config) and a route's
// `waf:` (false: off for this route; or rule exclusions and a mode of its own), as an
// nginx+ModSecurity or Coraza user writes them: `modsecurity on` for the server, `off` or
// `SecRuleRemoveById`/`ctl:ruleRemoveTargetById` per location.
import { existsSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type ErrorFn, type Rec, type RouteCheck } from '../../config/check-kit.js';
import { duration, object, size, stringEnum } from '../../config/schema-kit.js';
import { parseDuration, parseSize } from '../../config/units.js';

export const WAF_DEFAULTS = {
  paranoia_level: 1 as 1 | 2 | 3 | 4,
  inbound_threshold: 5,
  outbound_threshold: 4,
  mode: 'block' as 'block' | 'detection_only',
  request_body_limit: '1mb',
  time_budget: '1s',
  on_budget_exceeded: 'block' as 'block' | 'pass',
  response_body_access: false,
  response_body_limit: '512kb',
  response_body_limit_action: 'process_partial' as 'process_partial' | 'reject',
  response_body_mime_types: ['text/plain', 'text/html', 'text/xml'],
};

const ID_RANGE_PATTERN = '^[0-9]+(-[0-9]+)?$';
const RuleIds = Type.Array(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: ID_RANGE_PATTERN, 'x-usher-expected': 'a rule id or a range like "920000-920999"' })]), {
  description: 'Rule ids or ranges ("942100", "920000-920999").',
});

const Exclusions = {
  exclude_rules: Type.Optional(RuleIds),
  exclude_tags: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Rules with a tag matching one of these (regexes, as SecRuleRemoveByTag) do not run: "attack-sqli", "paranoia-level/2".' })),
  exclude_targets: Type.Optional(
    Type.Array(
      object(
        {
          rules: Type.Optional(RuleIds),
          tags: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Rules by tag (regexes).' })),
          targets: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Variables these rules leave out, as SecLang writes them: "ARGS:password", "REQUEST_COOKIES:/^_ga/", "REQUEST_HEADERS:User-Agent".' }),
        },
        { description: 'Leave variables out of some rules (ctl:ruleRemoveTargetById / ByTag, for a whole route).' },
      ),
      { description: 'Per-rule target exclusions.' },
    ),
  ),
};

export const WafSchema = object(
  {
    crs: Type.String({ minLength: 1, description: 'The OWASP Core Rule Set installation: its directory (with rules/*.conf, e.g. /usr/share/modsecurity-crs from Debian\'s modsecurity-crs), or a rule file glob. usher ships no rules.' }),
    paranoia_level: Type.Optional(Type.Integer({ minimum: 1, maximum: 4, default: WAF_DEFAULTS.paranoia_level, description: 'The CRS paranoia level (1-4): higher levels run more rules and block more false positives.' })),
    executing_paranoia_level: Type.Optional(Type.Integer({ minimum: 1, maximum: 4, description: 'Run (and log) the rules up to this level while scoring only to paranoia_level (the CRS\'s executing_paranoia_level); default: paranoia_level.' })),
    inbound_threshold: Type.Optional(Type.Integer({ minimum: 1, default: WAF_DEFAULTS.inbound_threshold, description: 'Inbound anomaly score at which a request is blocked (the CRS\'s inbound_anomaly_score_threshold; a critical match scores 5).' })),
    outbound_threshold: Type.Optional(Type.Integer({ minimum: 1, default: WAF_DEFAULTS.outbound_threshold, description: 'Outbound anomaly score at which a response is blocked (the CRS\'s outbound_anomaly_score_threshold; the response rules run with response_body_access).' })),
    mode: Type.Optional(stringEnum(['block', 'detection_only'] as const, { default: WAF_DEFAULTS.mode, description: 'block: a request over the threshold gets 403 waf_blocked. detection_only: it passes; its matches are logged and audited (SecRuleEngine DetectionOnly).' })),
    request_body_limit: Type.Optional(size('Largest request body the WAF reads (SecRequestBodyLimit); a larger one is refused with 413.', WAF_DEFAULTS.request_body_limit)),
    time_budget: Type.Optional(duration('Most time the rules may take on one request, a bound for the pathological case (a warm CRS at PL1 takes well under a millisecond; the first requests after a load, before the JIT warms up, take tens); checked between rules, and a runaway regex is also cut off by V8\'s linear-time fallback.', WAF_DEFAULTS.time_budget)),
    on_budget_exceeded: Type.Optional(stringEnum(['block', 'pass'] as const, { default: WAF_DEFAULTS.on_budget_exceeded, description: 'A request whose evaluation ran out of time_budget: block (403 waf_blocked; in detection_only it passes) or pass; either way it is audited with budget_exceeded.' })),
    response_body_access: Type.Optional(Type.Boolean({ default: WAF_DEFAULTS.response_body_access, description: 'Run the response phases (SecResponseBodyAccess On): phase 3 on the upstream\'s head and phase 4 on its body, read whole up to response_body_limit before anything goes downstream (the CRS\'s RESPONSE-95x data leakage rules, blocked with 403 waf_blocked). It costs the latency to first byte of reading that much of the body. Off: no response phase runs, nothing is held.' })),
    response_body_limit: Type.Optional(size('Most of a response body phase 4 reads (SecResponseBodyLimit).', WAF_DEFAULTS.response_body_limit)),
    response_body_limit_action: Type.Optional(stringEnum(['process_partial', 'reject'] as const, { default: WAF_DEFAULTS.response_body_limit_action, description: 'A longer body (SecResponseBodyLimitAction): process_partial inspects its first response_body_limit bytes and passes it all; reject answers 403 waf_blocked (in detection_only it passes).' })),
    response_body_mime_types: Type.Optional(Type.Array(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+/[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', 'x-usher-expected': 'a media type like text/html' }), { description: 'The media types whose bodies phase 4 reads (SecResponseBodyMimeType; ModSecurity\'s recommended text/plain, text/html, text/xml by default); other bodies stream, and phase 4 runs without them.' })),
    audit_log: Type.Optional(Type.String({ minLength: 1, description: 'A file that gets one JSON line per blocked or flagged request: the request id, the matched rules with their data (truncated), the scores.' })),
    allowed_methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { description: 'The methods the CRS allows (tx.allowed_methods; CRS default GET HEAD POST OPTIONS).' })),
    rules: Type.Optional(Type.Array(Type.String(), { description: 'SecLang read after the CRS, as an operator writes it for ModSecurity (SecRuleRemoveById, SecRuleUpdateTargetById, SecRule with ctl:...).' })),
    ...Exclusions,
  },
  { description: 'A web application firewall running the OWASP Core Rule Set on every proxied route (a route says `waf: false` to opt out). docs/waf.md says what of SecLang is supported.' },
);

export const RouteWafSchema = Type.Union(
  [
    Type.Literal(false),
    object(
      {
        mode: Type.Optional(stringEnum(['block', 'detection_only'] as const, { description: 'This route\'s mode (default: the top-level mode).' })),
        ...Exclusions,
      },
      { description: 'This route\'s rule exclusions (added to the top-level ones) and mode.' },
    ),
  ],
  { description: 'The WAF on this route: false (off), or exclusions. Default: on, as `waf:` says.', 'x-usher-expected': 'false or a section' },
);

export type WafInput = Static<typeof WafSchema>;
export type RouteWafInput = Static<typeof RouteWafSchema>;

export interface WafExclusionConfig {
  rules: Array<[number, number]>;
  tags: string[];
  targets: Array<{ rules: Array<[number, number]>; tags: string[]; targets: string[] }>;
}

export interface WafConfig {
  crs: string;
  paranoia_level: 1 | 2 | 3 | 4;
  executing_paranoia_level: number | undefined;
  inbound_threshold: number;
  outbound_threshold: number;
  mode: 'block' | 'detection_only';
  request_body_limit: number;
  time_budget: number; // ms
  on_budget_exceeded: 'block' | 'pass';
  response_body_access: boolean;
  response_body_limit: number;
  response_body_limit_action: 'process_partial' | 'reject';
  response_body_mime_types: string[];
  audit_log: string | undefined;
  allowed_methods: string[] | undefined;
  rules: string[];
  exclude: WafExclusionConfig;
}

export interface RouteWaf {
  mode: 'block' | 'detection_only';
  /** The top-level exclusions and the route's. */
  exclude: WafExclusionConfig;
}

function ranges(ids: ReadonlyArray<number | string> | undefined): Array<[number, number]> {
  return (ids ?? []).map((id) => {
    const [lo, hi] = String(id).split('-').map(Number) as [number, number | undefined];
    return [lo, hi ?? lo];
  });
}

function exclusionsOf(s: { exclude_rules?: Array<number | string>; exclude_tags?: string[]; exclude_targets?: Array<{ rules?: Array<number | string>; tags?: string[]; targets: string[] }> } | undefined): WafExclusionConfig {
  return {
    rules: ranges(s?.exclude_rules),
    tags: [...(s?.exclude_tags ?? [])],
    targets: (s?.exclude_targets ?? []).map((t) => ({ rules: ranges(t.rules), tags: [...(t.tags ?? [])], targets: [...t.targets] })),
  };
}

export function normalizeWaf(input: WafInput, filePath: (p: string) => string): WafConfig {
  const d = WAF_DEFAULTS;
  return {
    crs: filePath(input.crs),
    paranoia_level: (input.paranoia_level ?? d.paranoia_level) as 1 | 2 | 3 | 4,
    executing_paranoia_level: input.executing_paranoia_level,
    inbound_threshold: input.inbound_threshold ?? d.inbound_threshold,
    outbound_threshold: input.outbound_threshold ?? d.outbound_threshold,
    mode: input.mode ?? d.mode,
    request_body_limit: parseSize(input.request_body_limit ?? d.request_body_limit),
    time_budget: parseDuration(input.time_budget ?? d.time_budget),
    on_budget_exceeded: input.on_budget_exceeded ?? d.on_budget_exceeded,
    response_body_access: input.response_body_access ?? d.response_body_access,
    response_body_limit: parseSize(input.response_body_limit ?? d.response_body_limit),
    response_body_limit_action: input.response_body_limit_action ?? d.response_body_limit_action,
    response_body_mime_types: [...(input.response_body_mime_types ?? d.response_body_mime_types)].map((t) => t.toLowerCase()),
    audit_log: input.audit_log === undefined ? undefined : filePath(input.audit_log),
    allowed_methods: input.allowed_methods === undefined ? undefined : [...input.allowed_methods],
    rules: [...(input.rules ?? [])],
    exclude: exclusionsOf(input),
  };
}

/** A proxied route's WAF: undefined when there is no `waf:` section or the route says false. */
export function normalizeRouteWaf(input: RouteWafInput | undefined, top: WafInput | undefined): RouteWaf | undefined {
  if (top === undefined || input === false) return undefined;
  const own = exclusionsOf(input);
  const base = exclusionsOf(top);
  return {
    mode: input?.mode ?? top.mode ?? WAF_DEFAULTS.mode,
    exclude: { rules: [...base.rules, ...own.rules], tags: [...base.tags, ...own.tags], targets: [...base.targets, ...own.targets] },
  };
}

/** The CRS path exists; ranges are low-high (check.ts, with the whole config as written). */
export function checkWaf(data: Rec, error: ErrorFn, resolve: (p: string) => string): void {
  checkRoutesNeedWaf(data, error);
  const w = data.waf;
  if (!isRec(w)) return;
  if (typeof w.crs === 'string') {
    const p = resolve(w.crs);
    const dir = p.replace(/\/[^/]*[*?[][^/]*$/, '');
    if (!existsSync(dir)) error(['waf', 'crs'], `no such file or directory: ${p}`, 'install a CRS (Debian: apt install modsecurity-crs, then crs: /usr/share/modsecurity-crs)');
  }
  checkExclusionRanges(w, ['waf'], error);
}

/** A route's `waf:` section needs the top-level one (the rule set). */
function checkRoutesNeedWaf(data: Rec, error: ErrorFn): void {
  if (isRec(data.waf)) return;
  list(data.routes).forEach((route, r) => {
    if (isRec(route) && isRec(route.waf)) error(['routes', r, 'waf'], 'a route\'s waf section needs the top-level `waf:` section (the CRS to run)');
  });
}

function checkExclusionRanges(s: Rec, at: Array<string | number>, error: ErrorFn): void {
  const check = (ids: unknown, path: Array<string | number>): void => {
    list(ids).forEach((id, i) => {
      if (typeof id !== 'string') return;
      const [lo, hi] = id.split('-').map(Number);
      if (hi !== undefined && lo !== undefined && hi < lo) error([...path, i], `range ${id} ends before it starts`);
    });
  };
  check(s.exclude_rules, [...at, 'exclude_rules']);
  list(s.exclude_targets).forEach((t, i) => {
    if (!isRec(t)) return;
    check(t.rules, [...at, 'exclude_targets', i, 'rules']);
    if (t.rules === undefined && t.tags === undefined) error([...at, 'exclude_targets', i], 'a target exclusion needs rules or tags');
  });
}

export const checkRouteWaf: RouteCheck = (route, path, { error }) => {
  if (!isRec(route.waf)) return;
  checkExclusionRanges(route.waf, [...path, 'waf'], error);
};
