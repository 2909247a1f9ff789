// Compiles directives into a rule set, once: targets resolved to collections, operators and
// transformation chains built, actions parsed (setvar and messages as compiled macros),
// skipAfter resolved to positions, chains linked. What usher cannot run is not an error: the
// rule is skipped and listed (`skipped`) with its id, file:line and the reason, as the issue
// asks; a malformed rule is an error with file:line.
import { dirname } from 'node:path';
import { type Macro, compileMacro } from './macro.js';
import { type CompiledOperator, UnsupportedError, compileOperator } from './operators.js';
import { type Directive, type Origin, SecLangError } from './parse.js';
import { LiteralFilters } from './prefilter.js';
import { type ActionSpec, type TargetSpec, parseActions, parseOperator, parseTargets } from './syntax.js';
import { TRANSFORMS, type Transform } from './transforms.js';
import { COLLECTIONS, DYNAMIC_COLLECTIONS, MAP_COLLECTIONS, collectionId } from './variables.js';

export type Disruptive = 'pass' | 'block' | 'deny' | 'drop' | 'allow' | 'redirect';
/** What `allow` lets through: the rest of the transaction, of this phase, or of the request phases (1-2). */
export type AllowScope = 'all' | 'phase' | 'request';

/** A phase's SecDefaultAction, as `block` resolves to it. */
export interface DefaultDisruptive {
  readonly action: Disruptive;
  readonly status: number | undefined;
  readonly redirect: Macro | undefined;
  readonly allow: AllowScope | undefined;
}
export type EngineMode = 'On' | 'Off' | 'DetectionOnly';

export interface Target {
  readonly collection: string;
  /** Lower-case selector. */
  readonly key: string | undefined;
  readonly regex: RegExp | undefined;
  readonly count: boolean;
  readonly exclude: boolean;
  /** TX and the other writable collections (read from their maps). */
  readonly map: boolean;
  /** The collection's id for the transaction's cache; -1: not cached (it changes as rules run). */
  readonly cid: number;
  /** As written, for reports. */
  readonly text: string;
}

export interface SetVar {
  readonly collection: string;
  readonly name: Macro;
  /** undefined: remove (`!tx.x`). */
  readonly value: Macro | undefined;
  readonly op: '=' | '+' | '-';
}

export type Ctl =
  | { readonly kind: 'ruleRemoveById'; readonly ranges: ReadonlyArray<readonly [number, number]> }
  | { readonly kind: 'ruleRemoveByTag'; readonly tag: RegExp }
  | { readonly kind: 'ruleRemoveTargetById'; readonly ranges: ReadonlyArray<readonly [number, number]>; readonly targets: readonly Target[] }
  | { readonly kind: 'ruleRemoveTargetByTag'; readonly tag: RegExp; readonly targets: readonly Target[] }
  | { readonly kind: 'ruleEngine'; readonly mode: EngineMode }
  | { readonly kind: 'requestBodyProcessor'; readonly processor: string }
  | { readonly kind: 'requestBodyAccess'; readonly on: boolean }
  | { readonly kind: 'forceRequestBodyVariable'; readonly on: boolean }
  | { readonly kind: 'ignored' };

export interface TransformChain {
  /** Interned id: equal chains share it (the per-request memo is keyed by it). */
  readonly id: number;
  readonly fns: readonly Transform[];
  readonly names: readonly string[];
  /** Each transformation's own id (aliases share one): the per-request memo of single steps. */
  readonly tids: readonly number[];
}

export interface Rule {
  readonly id: number;
  readonly origin: Origin;
  readonly phase: number;
  readonly targets: readonly Target[];
  readonly exclusions: Target[];
  readonly operator: CompiledOperator;
  readonly negated: boolean;
  readonly operatorText: string;
  readonly transforms: TransformChain;
  readonly multiMatch: boolean;
  readonly capture: boolean;
  readonly setvars: readonly SetVar[];
  readonly ctls: readonly Ctl[];
  readonly msg: Macro | undefined;
  readonly logdata: Macro | undefined;
  readonly tags: readonly string[];
  readonly severity: number | undefined;
  readonly ver: string | undefined;
  /** The action a match takes: `block` is resolved to the phase's SecDefaultAction when compiled (never 'block' here). */
  readonly disruptive: Disruptive | undefined;
  readonly status: number | undefined;
  /** `redirect:URL` (a macro, expanded when the rule fires). */
  readonly redirect: Macro | undefined;
  /** `allow`, `allow:phase`, `allow:request`. */
  readonly allow: AllowScope | undefined;
  readonly log: boolean;
  readonly auditlog: boolean;
  readonly skip: number;
  readonly skipAfter: string | undefined;
  /** The next rule of the chain, or undefined. */
  chained: Rule | undefined;
}

export type PhaseItem = { readonly kind: 'rule'; readonly rule: Rule; skipTo: number } | { readonly kind: 'marker'; readonly name: string };

export interface SkippedRule {
  readonly id: number | undefined;
  readonly origin: Origin;
  readonly reason: string;
}

export interface Settings {
  ruleEngine: EngineMode;
  requestBodyAccess: boolean;
  responseBodyAccess: boolean;
  /** SecResponseBodyMimeType: media types (lower case, no parameters) whose body phase 4 reads; undefined: all. */
  responseBodyMimeTypes: Set<string> | undefined;
  responseBodyLimit: number;
  responseBodyLimitAction: 'Reject' | 'ProcessPartial';
  requestBodyLimit: number;
  requestBodyNoFilesLimit: number;
  requestBodyLimitAction: 'Reject' | 'ProcessPartial';
  argumentsLimit: number;
  componentSignatures: string[];
}

export interface RuleSet {
  /** Index 1-5: the items of that phase in order (markers appear in every phase). */
  readonly phases: readonly (readonly PhaseItem[])[];
  readonly rules: ReadonlyMap<number, Rule>;
  readonly skipped: readonly SkippedRule[];
  /** Directives read but without effect in usher (audit, debug log, collections on disk...). */
  readonly ignored: readonly { readonly name: string; readonly origin: Origin }[];
  /** Rules whose @rx needed an approximation (possessive, atomic): id and what. */
  readonly approximations: readonly { readonly id: number; readonly what: readonly string[] }[];
  readonly settings: Settings;
}

const SEVERITIES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];
const PHASE_NAMES: Record<string, number> = { request: 2, response: 4, logging: 5 };

/** Directives that are accepted and have no effect in usher, with why (docs/waf.md). */
const IGNORED = new Set(
  [
    'SecAuditEngine', 'SecAuditLog', 'SecAuditLogParts', 'SecAuditLogType', 'SecAuditLogFormat', 'SecAuditLogStorageDir',
    'SecAuditLogRelevantStatus', 'SecAuditLogDirMode', 'SecAuditLogFileMode', 'SecDebugLog', 'SecDebugLogLevel', 'SecTmpDir',
    'SecDataDir', 'SecUploadDir', 'SecUploadKeepFiles', 'SecUploadFileMode', 'SecCollectionTimeout', 'SecPcreMatchLimit',
    'SecPcreMatchLimitRecursion', 'SecUnicodeMapFile', 'SecStatusEngine', 'SecRequestBodyInMemoryLimit', 'SecTmpSaveUploadedFiles', 'SecCookieFormat',
    'SecArgumentSeparator', 'SecServerSignature', 'SecHttpBlKey', 'SecGeoLookupDb', 'SecUploadFileLimit', 'SecXmlExternalEntity',
    'SecRequestBodyJsonDepthLimit',
  ].map((s) => s.toLowerCase()),
);

let nextChainId = 0;
const chainIds = new Map<string, number>();

function chainOf(names: string[]): TransformChain {
  const key = names.join(',');
  let id = chainIds.get(key);
  if (id === undefined) {
    id = nextChainId++;
    chainIds.set(key, id);
  }
  const fns = names.map((n) => TRANSFORMS[n.toLowerCase()] as Transform);
  return { id, names, fns, tids: fns.map((f) => TRANSFORM_IDS.get(f) as number) };
}

const TRANSFORM_IDS = new Map<Transform, number>([...new Set(Object.values(TRANSFORMS))].map((f, i) => [f, i]));

function parseRanges(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const part of text.split(/[\s,]+/)) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new Error(`not a rule id or range: "${part}"`);
    out.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return out;
}

export function inRanges(id: number, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  for (const [lo, hi] of ranges) if (id >= lo && id <= hi) return true;
  return false;
}

function selectorRegex(source: string): RegExp {
  return new RegExp(source, 'i');
}

export function compileTarget(spec: TargetSpec): Target {
  if (!COLLECTIONS.has(spec.collection)) throw new UnsupportedError(`variable ${spec.collection} is not supported`);
  const text = `${spec.exclude ? '!' : spec.count ? '&' : ''}${spec.collection}${spec.selector === undefined ? '' : spec.selectorIsRegex ? `:/${spec.selector}/` : `:${spec.selector}`}`;
  return {
    collection: spec.collection,
    key: spec.selectorIsRegex || spec.selector === undefined ? undefined : spec.selector.toLowerCase(),
    regex: spec.selectorIsRegex && spec.selector !== undefined ? selectorRegex(spec.selector) : undefined,
    count: spec.count,
    exclude: spec.exclude,
    map: MAP_COLLECTIONS.has(spec.collection),
    cid: DYNAMIC_COLLECTIONS.has(spec.collection) ? -1 : collectionId(spec.collection),
    text,
  };
}

function compileTargets(text: string): Target[] {
  return parseTargets(text).map(compileTarget);
}

/** A tag selector as ModSecurity reads it (ruleRemoveByTag and the like): a regex, or the literal tag when it is none. */
export function tagPattern(text: string): RegExp {
  // ModSecurity matches ruleRemoveByTag as a regex against each tag
  try {
    return new RegExp(text);
  } catch {
    return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  }
}

function compileCtl(value: string): Ctl {
  const eq = value.indexOf('=');
  const name = (eq < 0 ? value : value.slice(0, eq)).trim();
  const arg = eq < 0 ? '' : value.slice(eq + 1).trim();
  switch (name.toLowerCase()) {
    case 'ruleremovebyid':
      return { kind: 'ruleRemoveById', ranges: parseRanges(arg) };
    case 'ruleremovebytag':
      return { kind: 'ruleRemoveByTag', tag: tagPattern(arg) };
    case 'ruleremovetargetbyid': {
      const semi = arg.indexOf(';');
      if (semi < 0) throw new Error(`ctl:ruleRemoveTargetById needs id;TARGET, got "${arg}"`);
      return { kind: 'ruleRemoveTargetById', ranges: parseRanges(arg.slice(0, semi)), targets: compileTargets(arg.slice(semi + 1)) };
    }
    case 'ruleremovetargetbytag': {
      const semi = arg.indexOf(';');
      if (semi < 0) throw new Error(`ctl:ruleRemoveTargetByTag needs tag;TARGET, got "${arg}"`);
      return { kind: 'ruleRemoveTargetByTag', tag: tagPattern(arg.slice(0, semi)), targets: compileTargets(arg.slice(semi + 1)) };
    }
    case 'ruleengine':
      return { kind: 'ruleEngine', mode: engineMode(arg) };
    case 'requestbodyprocessor':
      return { kind: 'requestBodyProcessor', processor: arg.toUpperCase() };
    case 'requestbodyaccess':
      return { kind: 'requestBodyAccess', on: /^on$/i.test(arg) };
    case 'forcerequestbodyvariable':
      return { kind: 'forceRequestBodyVariable', on: /^on$/i.test(arg) };
    case 'auditengine':
    case 'auditlogparts':
    case 'debugloglevel':
      return { kind: 'ignored' };
    default:
      throw new UnsupportedError(`ctl:${name} is not supported`);
  }
}

function engineMode(arg: string): EngineMode {
  const a = arg.toLowerCase();
  if (a === 'on') return 'On';
  if (a === 'off') return 'Off';
  if (a === 'detectiononly') return 'DetectionOnly';
  throw new Error(`engine mode must be On, Off or DetectionOnly, got "${arg}"`);
}

function compileSetVar(value: string): SetVar {
  let v = value.trim();
  let remove = false;
  if (v.startsWith('!')) {
    remove = true;
    v = v.slice(1);
  }
  const dot = v.indexOf('.');
  if (dot < 0) throw new Error(`setvar needs collection.name, got "${value}"`);
  const collection = v.slice(0, dot).toUpperCase();
  if (!['TX', 'IP', 'GLOBAL', 'SESSION', 'USER', 'RESOURCE'].includes(collection)) throw new UnsupportedError(`setvar on collection ${collection}`);
  const rest = v.slice(dot + 1);
  const eq = rest.indexOf('=');
  if (remove) return { collection, name: compileMacro(rest.toLowerCase()), value: undefined, op: '=' };
  if (eq < 0) return { collection, name: compileMacro(rest.toLowerCase()), value: compileMacro('1'), op: '=' };
  const name = rest.slice(0, eq);
  let val = rest.slice(eq + 1);
  let op: '=' | '+' | '-' = '=';
  if (val.startsWith('+')) {
    op = '+';
    val = val.slice(1);
  } else if (val.startsWith('-')) {
    op = '-';
    val = val.slice(1);
  }
  return { collection, name: compileMacro(name.toLowerCase()), value: compileMacro(val), op };
}

interface Draft {
  id: number | undefined;
  phase: number | undefined;
  chain: boolean;
  transforms: string[] | undefined;
  multiMatch: boolean;
  capture: boolean;
  setvars: SetVar[];
  ctls: Ctl[];
  msg: Macro | undefined;
  logdata: Macro | undefined;
  tags: string[];
  severity: number | undefined;
  ver: string | undefined;
  disruptive: Disruptive | undefined;
  status: number | undefined;
  redirect: Macro | undefined;
  allow: AllowScope | undefined;
  log: boolean | undefined;
  auditlog: boolean | undefined;
  skip: number;
  skipAfter: string | undefined;
}

function draftOf(actions: readonly ActionSpec[]): Draft {
  const d: Draft = {
    id: undefined, phase: undefined, chain: false, transforms: undefined, multiMatch: false, capture: false, setvars: [], ctls: [],
    msg: undefined, logdata: undefined, tags: [], severity: undefined, ver: undefined, disruptive: undefined, status: undefined,
    redirect: undefined, allow: undefined, log: undefined, auditlog: undefined, skip: 0, skipAfter: undefined,
  };
  for (const a of actions) {
    const v = a.value ?? '';
    switch (a.name) {
      case 'id':
        d.id = Number(v);
        if (!Number.isInteger(d.id) || d.id <= 0) throw new Error(`id must be a positive integer, got "${v}"`);
        break;
      case 'phase': {
        const p = PHASE_NAMES[v.toLowerCase()] ?? Number(v);
        if (!(p >= 1 && p <= 5)) throw new Error(`phase must be 1-5 (or request/response/logging), got "${v}"`);
        d.phase = p;
        break;
      }
      case 'chain':
        d.chain = true;
        break;
      case 't':
        if (v.toLowerCase() === 'none') d.transforms = [];
        else {
          if (TRANSFORMS[v.toLowerCase()] === undefined) throw new UnsupportedError(`transformation t:${v} is not supported`);
          (d.transforms ??= []).push(v);
        }
        break;
      case 'multimatch':
        d.multiMatch = true;
        break;
      case 'capture':
        d.capture = true;
        break;
      case 'setvar':
        d.setvars.push(compileSetVar(v));
        break;
      case 'ctl':
        d.ctls.push(compileCtl(v));
        break;
      case 'msg':
        d.msg = compileMacro(v);
        break;
      case 'logdata':
        d.logdata = compileMacro(v);
        break;
      case 'tag':
        d.tags.push(v);
        break;
      case 'severity': {
        const n = /^\d$/.test(v) ? Number(v) : SEVERITIES.indexOf(v.toUpperCase());
        if (n < 0) throw new Error(`unknown severity "${v}"`);
        d.severity = n;
        break;
      }
      case 'ver':
        d.ver = v;
        break;
      case 'pass':
      case 'block':
      case 'deny':
      case 'drop':
        d.disruptive = a.name;
        break;
      case 'allow': {
        // ModSecurity v3: `allow` (the rest of the transaction), `allow:phase`, `allow:request`
        const scope = v === '' ? 'all' : v.toLowerCase();
        if (scope !== 'all' && scope !== 'phase' && scope !== 'request') throw new Error(`allow takes phase or request, got "${v}"`);
        d.disruptive = 'allow';
        d.allow = scope;
        break;
      }
      case 'redirect':
        if (v === '') throw new Error('redirect needs a URL');
        d.disruptive = 'redirect';
        d.redirect = compileMacro(v);
        break;
      case 'status': {
        const n = Number(v);
        // what usher can answer (a local reply outside 200-599 is refused)
        if (!Number.isInteger(n) || n < 200 || n > 599) throw new Error(`status must be an HTTP status usher can answer (200-599), got "${v}"`);
        d.status = n;
        break;
      }
      case 'log':
        d.log = true;
        break;
      case 'nolog':
        d.log = false;
        d.auditlog ??= false;
        break;
      case 'auditlog':
        d.auditlog = true;
        break;
      case 'noauditlog':
        d.auditlog = false;
        break;
      case 'skip':
        d.skip = Number(v);
        break;
      case 'skipafter':
        d.skipAfter = v;
        break;
      // accepted without effect: metadata, and persistent collections (usher keeps IP/GLOBAL
      // per request only: initcol/expirevar change nothing within one request)
      case 'rev':
      case 'maturity':
      case 'accuracy':
      case 'initcol':
      case 'expirevar':
      case 'deprecatevar':
      case 'setenv':
      case 'sanitisematched':
      case 'sanitisearg':
      case 'sanitiserequestheader':
      case 'sanitisematchedbytes':
        break;
      default:
        throw new UnsupportedError(`action ${a.name} is not supported`);
    }
  }
  return d;
}

export interface CompileOptions {
  /** Rule ids removed from the start (usher's per-route exclusions use SecRuleRemoveById). */
  readonly removeIds?: readonly number[];
}

/** Compiles a directive list into a rule set. */
export function compileRules(directives: readonly Directive[], options: CompileOptions = {}): RuleSet {
  const settings: Settings = {
    ruleEngine: 'On',
    requestBodyAccess: false,
    responseBodyAccess: false,
    // ModSecurity's defaults: every type until SecResponseBodyMimeType says (v3), 512 KiB
    responseBodyMimeTypes: undefined,
    responseBodyLimit: 524288,
    responseBodyLimitAction: 'ProcessPartial',
    requestBodyLimit: 13107200,
    requestBodyNoFilesLimit: 131072,
    requestBodyLimitAction: 'Reject',
    argumentsLimit: 1000,
    componentSignatures: [],
  };
  const defaults: Array<Draft | undefined> = [undefined, undefined, undefined, undefined, undefined, undefined];
  const skipped: SkippedRule[] = [];
  const ignored: { name: string; origin: Origin }[] = [];
  const ordered: Rule[] = []; // chain heads and markers, in order
  const items: Array<{ kind: 'rule'; rule: Rule } | { kind: 'marker'; name: string }> = [];
  const removeIds: Array<[number, number]> = (options.removeIds ?? []).map((i) => [i, i]);
  const removeTags: RegExp[] = [];
  const updates: Array<{ by: 'id'; ranges: Array<[number, number]>; targets: Target[] } | { by: 'tag'; tag: RegExp; targets: Target[] }> = [];
  let chainParent: Rule | undefined;
  let chainSkipped = false;
  // the @rx prefilters of the whole set, one automaton (prefilter.ts)
  const literals = new LiteralFilters();

  const onOff = (d: Directive): boolean => {
    const v = (d.args[0] ?? '').toLowerCase();
    if (v !== 'on' && v !== 'off') throw new SecLangError(d.origin, `${d.name} must be On or Off`);
    return v === 'on';
  };
  const int = (d: Directive): number => {
    const n = Number(d.args[0]);
    if (!Number.isInteger(n) || n < 0) throw new SecLangError(d.origin, `${d.name} needs a non-negative integer`);
    return n;
  };

  const buildRule = (d: Directive, targetsText: string | undefined, opText: string | undefined, actionsText: string): void => {
    const inChain = chainParent !== undefined;
    let actions: ActionSpec[];
    try {
      actions = parseActions(actionsText);
    } catch (err) {
      throw new SecLangError(d.origin, (err as Error).message, { cause: err });
    }
    let id: number | undefined;
    try {
      const draft = draftOf(actions);
      id = draft.id;
      if (!inChain && draft.id === undefined) throw new Error(`${d.name} needs an id`);
      const phase = inChain ? (chainParent as Rule).phase : (draft.phase ?? 2);
      const def = defaults[phase];
      const transforms = draft.transforms ?? [];
      // SecDefaultAction's transformations come first unless the rule says t:none
      const hasNone = actions.some((a) => a.name === 't' && (a.value ?? '').toLowerCase() === 'none');
      const allTransforms = hasNone || def?.transforms === undefined ? transforms : [...def.transforms, ...transforms];
      const targets = targetsText === undefined ? [] : compileTargets(targetsText);
      const op = opText === undefined ? { name: 'unconditionalMatch', argument: '', negated: false } : parseOperator(opText);
      const operator = compileOperator(op.name, op.argument, { dir: dirname(d.origin.file), literals });
      const rule: Rule = {
        id: inChain ? (chainParent as Rule).id : (draft.id as number),
        origin: d.origin,
        phase,
        targets: targets.filter((t) => !t.exclude),
        exclusions: targets.filter((t) => t.exclude),
        operator,
        negated: op.negated,
        operatorText: `${op.negated ? '!' : ''}@${op.name} ${op.argument}`.trim(),
        transforms: chainOf(allTransforms),
        multiMatch: draft.multiMatch,
        capture: draft.capture,
        setvars: draft.setvars,
        ctls: draft.ctls,
        msg: draft.msg ?? (inChain ? undefined : def?.msg),
        logdata: draft.logdata ?? (inChain ? undefined : def?.logdata),
        tags: draft.tags,
        severity: draft.severity,
        ver: draft.ver,
        disruptive: draft.disruptive ?? (inChain ? undefined : (def?.disruptive ?? 'pass')),
        status: draft.status ?? def?.status,
        redirect: draft.disruptive === undefined && !inChain ? def?.redirect : draft.redirect,
        allow: draft.disruptive === undefined && !inChain ? def?.allow : draft.allow,
        log: draft.log ?? def?.log ?? true,
        auditlog: draft.auditlog ?? def?.auditlog ?? true,
        skip: draft.skip,
        skipAfter: draft.skipAfter,
        chained: undefined,
      };
      if (operator.approximations.length > 0) approximations.push({ id: rule.id, what: operator.approximations });
      if (inChain) {
        if (!chainSkipped) {
          let last = chainParent as Rule;
          while (last.chained !== undefined) last = last.chained;
          last.chained = rule;
        }
      } else {
        chainSkipped = false;
        ordered.push(rule);
        items.push({ kind: 'rule', rule });
      }
      chainParent = draft.chain ? (inChain ? chainParent : rule) : undefined;
    } catch (err) {
      if (!(err instanceof UnsupportedError)) throw new SecLangError(d.origin, (err as Error).message, { cause: err });
      const head = chainParent;
      const reason = err.message;
      const chains = actions.some((a) => a.name === 'chain');
      if (head !== undefined) {
        // a chain with a part usher cannot run: drop the whole chain
        if (!chainSkipped) skipped.push({ id: head.id, origin: d.origin, reason });
        const at = items.findIndex((it) => it.kind === 'rule' && it.rule === head);
        if (at >= 0) items.splice(at, 1);
        chainSkipped = true;
        chainParent = chains ? head : undefined;
      } else {
        skipped.push({ id, origin: d.origin, reason });
        // a chained rule's followers go with it: a placeholder head absorbs them
        chainParent = chains ? placeholder(id ?? 0, d) : undefined;
        chainSkipped = chains;
      }
    }
  };
  const approximations: { id: number; what: readonly string[] }[] = [];

  for (const d of directives) {
    switch (d.lname) {
      case 'secrule': {
        if (d.args.length < 2) throw new SecLangError(d.origin, 'SecRule needs VARIABLES "OPERATOR" ["ACTIONS"]');
        buildRule(d, d.args[0], d.args[1], d.args[2] ?? '');
        break;
      }
      case 'secaction':
        buildRule(d, undefined, undefined, d.args[0] ?? '');
        break;
      case 'secmarker':
        if (d.args[0] === undefined) throw new SecLangError(d.origin, 'SecMarker needs a name');
        items.push({ kind: 'marker', name: d.args[0] });
        break;
      case 'secdefaultaction': {
        let draft: Draft;
        try {
          draft = draftOf(parseActions(d.args[0] ?? ''));
        } catch (err) {
          throw new SecLangError(d.origin, (err as Error).message, { cause: err });
        }
        if (draft.phase === undefined) throw new SecLangError(d.origin, 'SecDefaultAction needs a phase');
        if (draft.disruptive === undefined) throw new SecLangError(d.origin, 'SecDefaultAction needs a disruptive action (pass, deny...)');
        defaults[draft.phase] = draft;
        break;
      }
      case 'secruleengine':
        try {
          settings.ruleEngine = engineMode(d.args[0] ?? '');
        } catch (err) {
          throw new SecLangError(d.origin, (err as Error).message, { cause: err });
        }
        break;
      case 'secrequestbodyaccess':
        settings.requestBodyAccess = onOff(d);
        break;
      case 'secresponsebodyaccess':
        settings.responseBodyAccess = onOff(d);
        break;
      case 'secresponsebodymimetype':
        settings.responseBodyMimeTypes ??= new Set();
        for (const a of d.args.join(' ').split(/\s+/)) if (a !== '') settings.responseBodyMimeTypes.add(a.toLowerCase());
        break;
      case 'secresponsebodymimetypesclear':
        settings.responseBodyMimeTypes = new Set();
        break;
      case 'secresponsebodylimit':
        settings.responseBodyLimit = int(d);
        break;
      case 'secresponsebodylimitaction': {
        const v = (d.args[0] ?? '').toLowerCase();
        if (v !== 'reject' && v !== 'processpartial') throw new SecLangError(d.origin, 'SecResponseBodyLimitAction must be Reject or ProcessPartial');
        settings.responseBodyLimitAction = v === 'reject' ? 'Reject' : 'ProcessPartial';
        break;
      }
      case 'secrequestbodylimit':
        settings.requestBodyLimit = int(d);
        break;
      case 'secrequestbodynofileslimit':
        settings.requestBodyNoFilesLimit = int(d);
        break;
      case 'secargumentslimit':
        settings.argumentsLimit = int(d);
        break;
      case 'secrequestbodylimitaction': {
        const v = (d.args[0] ?? '').toLowerCase();
        if (v !== 'reject' && v !== 'processpartial') throw new SecLangError(d.origin, 'SecRequestBodyLimitAction must be Reject or ProcessPartial');
        settings.requestBodyLimitAction = v === 'reject' ? 'Reject' : 'ProcessPartial';
        break;
      }
      case 'seccomponentsignature':
        settings.componentSignatures.push(d.args[0] ?? '');
        break;
      case 'secruleremovebyid':
        try {
          removeIds.push(...parseRanges(d.args.join(' ')));
        } catch (err) {
          throw new SecLangError(d.origin, (err as Error).message, { cause: err });
        }
        break;
      case 'secruleremovebytag':
        removeTags.push(tagPattern(d.args[0] ?? ''));
        break;
      case 'secruleupdatetargetbyid':
      case 'secruleupdatetargetbytag': {
        if (d.args.length < 2) throw new SecLangError(d.origin, `${d.name} needs a rule and targets`);
        if (d.args.length > 2) throw new SecLangError(d.origin, `${d.name} with a replacement target is not supported`);
        let targets: Target[];
        try {
          targets = compileTargets(d.args[1] ?? '');
        } catch (err) {
          throw new SecLangError(d.origin, (err as Error).message, { cause: err });
        }
        if (d.lname === 'secruleupdatetargetbyid') updates.push({ by: 'id', ranges: parseRanges(d.args[0] ?? ''), targets });
        else updates.push({ by: 'tag', tag: tagPattern(d.args[0] ?? ''), targets });
        break;
      }
      default:
        if (IGNORED.has(d.lname)) ignored.push({ name: d.name, origin: d.origin });
        else throw new SecLangError(d.origin, `unknown directive ${d.name}`);
    }
  }
  if (chainParent !== undefined && !chainSkipped) {
    throw new SecLangError(chainParent.origin, `rule ${chainParent.id} ends with chain but no rule follows`);
  }

  // removals and target updates apply to the whole set (usher appends them after the CRS)
  const removed = (r: Rule): boolean => inRanges(r.id, removeIds) || r.tags.some((t) => removeTags.some((re) => re.test(t)));
  for (const u of updates) {
    for (const r of ordered) {
      const hit = u.by === 'id' ? inRanges(r.id, u.ranges) : r.tags.some((t) => u.tag.test(t));
      if (!hit) continue;
      for (const t of u.targets) {
        if (t.exclude) r.exclusions.push(t);
        else (r.targets as Target[]).push(t);
      }
    }
  }
  const rules = new Map<number, Rule>();
  const phases: PhaseItem[][] = [[], [], [], [], [], []];
  for (const it of items) {
    if (it.kind === 'marker') {
      for (let p = 1; p <= 5; p++) (phases[p] as PhaseItem[]).push({ kind: 'marker', name: it.name });
      continue;
    }
    if (removed(it.rule)) continue;
    rules.set(it.rule.id, it.rule);
    (phases[it.rule.phase] as PhaseItem[]).push({ kind: 'rule', rule: it.rule, skipTo: -1 });
  }
  for (const list of phases) {
    for (let i = 0; i < list.length; i++) {
      const it = list[i] as PhaseItem;
      if (it.kind !== 'rule' || it.rule.skipAfter === undefined) continue;
      const name = it.rule.skipAfter;
      let at = -1;
      for (let j = i + 1; j < list.length; j++) {
        const m = list[j] as PhaseItem;
        if (m.kind === 'marker' && m.name === name) {
          at = j;
          break;
        }
      }
      // a missing marker: skip to the end of the phase (ModSecurity's behaviour)
      it.skipTo = at < 0 ? list.length : at;
    }
  }
  const blockAction = defaults.map((d): DefaultDisruptive => {
    const action = d?.disruptive === 'block' || d?.disruptive === undefined ? 'pass' : d.disruptive;
    return { action, status: d?.status, redirect: d?.redirect, allow: d?.allow };
  });
  // `block` is the phase's SecDefaultAction (its status and URL with it; the rule's own status:
  // comes first, as v3 runs status before the disruptive action): resolved here, once, so a
  // match takes the rule's action as it stands
  for (const r of ordered) {
    if (r.disruptive !== 'block') continue;
    const def = blockAction[r.phase];
    const m = r as { -readonly [K in keyof Rule]: Rule[K] };
    m.disruptive = def?.action ?? 'pass';
    m.redirect = def?.redirect;
    m.allow = def?.allow;
    m.status = r.status ?? def?.status;
  }
  literals.build();
  return { phases, rules, skipped, ignored, approximations, settings };
}

function placeholder(id: number, d: Directive): Rule {
  return {
    id, origin: d.origin, phase: 0, targets: [], exclusions: [], operator: { name: 'noMatch', fn: () => false, approximations: [] }, negated: false,
    operatorText: '', transforms: chainOf([]), multiMatch: false, capture: false, setvars: [], ctls: [], msg: undefined, logdata: undefined,
    tags: [], severity: undefined, ver: undefined, disruptive: undefined, status: undefined, redirect: undefined, allow: undefined, log: false, auditlog: false, skip: 0,
    skipAfter: undefined, chained: undefined,
  };
}
