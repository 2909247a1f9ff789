// One request's run through a rule set: its variables (built lazily, once), TX and the other
// writable collections, the per-request ctl: changes, transformation results memoised per
// chain and value, and the outcome (matched rules, an interruption). The engine runs the rules
// as written; anomaly scoring is the CRS's own rules' doing (949110 decides).
import type { MacroSource } from './macro.js';
import { expandMacro } from './macro.js';
import { toInt, type OperatorContext } from './operators.js';
import type { LiteralFilters } from './prefilter.js';
import { type AllowScope, type Ctl, type EngineMode, type Rule, type RuleSet, type Target, type TransformChain, inRanges } from './rules.js';
import { urlDecode } from './transforms.js';
import { type Collection, DYNAMIC_COLLECTIONS, EMPTY, ListBuilder, MAP_COLLECTIONS, parseCookies, parseUrlEncoded, scalar } from './variables.js';

/** The request as the client sent it (names and target raw, before usher normalises them). */
export interface WafRequest {
  readonly id: string;
  readonly method: string;
  /** The request target as received (origin-form or absolute-form), undecoded. */
  readonly target: string;
  /** '1.0', '1.1' or '2' (shown as HTTP/2.0, as ModSecurity behind nginx does). */
  readonly httpVersion: string;
  /** Flat name/value pairs as received (latin1 strings: one char a byte). */
  readonly headers: readonly string[];
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly serverName?: string;
  readonly serverPort?: number;
}

/** The upstream's response head, for phases 3 and 4 (names as received, latin1 strings). */
export interface WafResponse {
  readonly status: number;
  /** The protocol the response goes downstream in: '1.0', '1.1' or '2' (HTTP/2.0). */
  readonly httpVersion: string;
  /** Flat name/value pairs. */
  readonly headers: readonly string[];
}

/** The collections phases 3 and 4 read (dropped from the cache when the response arrives). */
const RESPONSE_COLLECTIONS = ['RESPONSE_STATUS', 'RESPONSE_PROTOCOL', 'RESPONSE_HEADERS', 'RESPONSE_HEADERS_NAMES', 'RESPONSE_CONTENT_TYPE', 'RESPONSE_CONTENT_LENGTH', 'RESPONSE_BODY', 'OUTBOUND_DATA_ERROR'];

export interface MatchedRule {
  readonly id: number;
  readonly phase: number;
  readonly msg: string;
  readonly data: string;
  readonly severity: number | undefined;
  readonly tags: readonly string[];
}

/**
 * A disruptive action that ends the request, as ModSecurity v3 sets its intervention: deny
 * (status: or 403), drop (usher closes the connection; v3 itself runs deny instead), redirect
 * (Location: the expanded URL, status 302 unless the rule's status: is 301-307).
 */
export interface Interruption {
  readonly ruleId: number;
  readonly action: 'deny' | 'drop' | 'redirect';
  readonly status: number;
  /** redirect: the URL, macros expanded. */
  readonly url?: string;
}

/** The disruptive action a request ended with, for the access and audit logs. */
export type WafAction = 'pass' | 'allow' | 'deny' | 'drop' | 'redirect';

/** Body variables a request body processor produced (body.ts). */
export interface BodyResult {
  readonly processor: string | undefined;
  readonly error: string | undefined;
  readonly args: ListBuilder | undefined;
  readonly files?: ListBuilder;
  readonly filesNames?: ListBuilder;
  readonly filesSizes?: ListBuilder;
  readonly partHeaders?: ListBuilder;
  readonly multipartFlags?: ReadonlyMap<string, string>;
  /** XML: '/*' (the root's text content) and '//@*' (each attribute value), as xml.ts makes them. */
  readonly xml?: ListBuilder;
}

const HTTP_VERSION: Record<string, string> = { '1.0': 'HTTP/1.0', '1.1': 'HTTP/1.1', '2': 'HTTP/2.0', '2.0': 'HTTP/2.0' };

/** Per-route exclusions, compiled once (applied like ctl: from the start of each request). */
export interface Exclusions {
  readonly ids: ReadonlyArray<readonly [number, number]>;
  readonly tags: readonly RegExp[];
  readonly targets: readonly RemovedTargets[];
}

export type RemovedTargets = { ranges?: ReadonlyArray<readonly [number, number]>; tag?: RegExp; targets: readonly Target[] };

export class Transaction implements MacroSource, OperatorContext {
  captures: string[] | undefined = undefined;
  private readonly captureBuf: string[] = [];
  readonly matched: MatchedRule[] = [];
  interruption: Interruption | undefined = undefined;
  /** Disruptive actions that did not interrupt (DetectionOnly): the rule that would have. */
  wouldInterrupt: Interruption | undefined = undefined;
  mode: EngineMode;
  /** Set when the time budget ran out: evaluation stopped there. */
  budgetExceeded = false;
  /** Stop all further phases (`allow`). */
  allowed = false;
  /** The `allow` that fired (in On mode): its rule and scope. */
  allowedBy: { readonly ruleId: number; readonly scope: AllowScope } | undefined = undefined;
  /** allow:request: phases 1-2 are skipped; allow:phase: the rest of the current one. */
  private allowScope: AllowScope | undefined;
  bodyProcessor: string | undefined = undefined;
  requestBodyAccess: boolean;
  forceRequestBodyVariable = false;

  private readonly maps = new Map<string, Map<string, string>>();
  private readonly cache = new Map<string, Collection>();
  /** The same collections by id (Target.cid): the rules' hot path. */
  private readonly slots: Array<Collection | undefined> = [];
  private readonly memo: Array<Map<string, string> | undefined> = [];
  /** One transformation's results by input (TransformChain.tids): chains share their steps. */
  private readonly stepMemo: Array<Map<string, string> | undefined> = [];
  /** The @rx prefilters' pass over each value seen (literalsIn), for one LiteralFilters. */
  private literalFilters: LiteralFilters | undefined;
  private literalMemo: Map<string, Uint8Array> | undefined;
  private removedIds: Array<readonly [number, number]> | undefined;
  private removedTags: RegExp[] | undefined;
  private removedTargets: RemovedTargets[] | undefined;
  private matchedVar = '';
  private matchedVarName = '';
  private prevMatched: ListBuilder | undefined;
  private curMatched: ListBuilder | undefined;
  private currentRule: Rule | undefined;
  private body: BodyResult | undefined;
  private rawBody = '';
  private resp: WafResponse | undefined;
  private respBody: string | undefined;
  private outboundDataError = false;
  private readonly started = performance.now();
  private deadline = Infinity;
  private readonly uri: { path: string; query: string | undefined; uri: string };

  constructor(
    readonly rules: RuleSet,
    readonly request: WafRequest,
    exclusions?: Exclusions,
  ) {
    this.mode = rules.settings.ruleEngine;
    if (exclusions !== undefined) {
      if (exclusions.ids.length > 0) this.removedIds = [...exclusions.ids];
      if (exclusions.tags.length > 0) this.removedTags = [...exclusions.tags];
      if (exclusions.targets.length > 0) this.removedTargets = [...exclusions.targets];
    }
    this.bodyProcessor = processorFor(headerValue(request.headers, 'content-type'));
    this.requestBodyAccess = rules.settings.requestBodyAccess;
    this.maps.set('TX', new Map());
    let target = request.target;
    const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (scheme !== null) target = target.slice(scheme[0].length) || '/';
    const q = target.indexOf('?');
    this.uri = { uri: target, path: q < 0 ? target : target.slice(0, q), query: q < 0 ? undefined : target.slice(q + 1) };
  }

  /** A time budget for the whole request's rule evaluation (checked between rules). */
  setBudget(ms: number): void {
    this.deadline = this.started + ms;
  }

  /** Runs one phase (1 request headers, 2 request body, 3/4 response, 5 logging). */
  runPhase(phase: number): void {
    if (this.interruption !== undefined || this.allowed || this.budgetExceeded || this.mode === 'Off') return;
    // allow:request lets the request phases through; the response phases run (ModSecurity v3)
    if (this.allowScope === 'request' && phase <= 2) return;
    this.allowScope = undefined;
    const list = this.rules.phases[phase];
    if (list === undefined) return;
    let checks = 0;
    for (let i = 0; i < list.length; i++) {
      const it = list[i];
      if (it === undefined || it.kind === 'marker') continue;
      const r = it.rule;
      if ((this.removedIds !== undefined || this.removedTags !== undefined) && this.isRemoved(r)) continue;
      if (++checks === 16) {
        checks = 0;
        if (this.deadline !== Infinity && performance.now() > this.deadline) {
          this.budgetExceeded = true;
          return;
        }
      }
      if (!this.evalChain(r)) continue;
      this.afterMatch(r);
      if (this.interruption !== undefined || this.allowed || (this.mode as EngineMode) === 'Off') return;
      if (this.allowScope !== undefined) {
        // allow:phase ends this phase only
        if (this.allowScope === 'phase') this.allowScope = undefined;
        return;
      }
      if (r.skipAfter !== undefined) i = it.skipTo;
      else if (r.skip > 0) {
        let n = r.skip;
        while (n > 0 && i + 1 < list.length) {
          i++;
          if (list[i]?.kind === 'rule') n--;
        }
      }
    }
  }

  /** Hands the request body to the transaction (before phase 2). */
  setBody(raw: string, result: BodyResult): void {
    this.rawBody = raw;
    this.body = result;
    this.bodyProcessor = result.processor;
    this.cache.clear();
    this.slots.length = 0;
  }

  /** Hands the response head to the transaction (before phase 3). */
  setResponse(response: WafResponse): void {
    this.resp = response;
    this.dropResponseCollections();
  }

  /**
   * Hands the response body (its first SecResponseBodyLimit bytes, latin1) to the transaction
   * (before phase 4); `overLimit`: the body was longer (OUTBOUND_DATA_ERROR is 1).
   */
  setResponseBody(raw: string, overLimit: boolean): void {
    this.respBody = raw;
    this.outboundDataError = overLimit;
    this.dropResponseCollections();
  }

  private dropResponseCollections(): void {
    for (const name of RESPONSE_COLLECTIONS) this.cache.delete(name);
    this.slots.length = 0;
  }

  /** The CRS's outbound anomaly score (959060-959063 sum it in phase 4). */
  get outboundScore(): number {
    return toInt(this.txValue('outbound_anomaly_score') ?? '0');
  }

  get anomalyScore(): number {
    const tx = this.maps.get('TX') as Map<string, string>;
    return toInt(tx.get('blocking_inbound_anomaly_score') ?? tx.get('inbound_anomaly_score') ?? tx.get('anomaly_score') ?? '0');
  }

  txValue(name: string): string | undefined {
    return this.maps.get('TX')?.get(name.toLowerCase());
  }

  setTx(name: string, value: string): void {
    (this.maps.get('TX') as Map<string, string>).set(name.toLowerCase(), value);
  }

  private isRemoved(r: Rule): boolean {
    if (this.removedIds !== undefined && inRanges(r.id, this.removedIds)) return true;
    if (this.removedTags !== undefined) for (const re of this.removedTags) for (const t of r.tags) if (re.test(t)) return true;
    return false;
  }

  private evalChain(head: Rule): boolean {
    this.prevMatched = undefined;
    this.curMatched = undefined;
    for (let r: Rule | undefined = head; r !== undefined; r = r.chained) {
      this.currentRule = r;
      if (r !== head) {
        this.prevMatched = this.curMatched;
        this.curMatched = undefined;
      }
      if (!this.evalRule(r, head)) return false;
    }
    return true;
  }

  private evalRule(r: Rule, head: Rule): boolean {
    this.captures = r.capture ? this.captureBuf : undefined;
    let exclusions: readonly Target[] = r.exclusions;
    if (this.removedTargets !== undefined) exclusions = this.dynamicExclusions(head, exclusions);
    if (r.targets.length === 0) {
      // SecAction (and chains of them): an unconditional match
      const ok = r.operator.fn('', this) !== r.negated;
      if (ok) {
        this.captureToTx();
        this.setVars(r);
      }
      return ok;
    }
    let any = false;
    for (const t of r.targets) {
      if (t.count) {
        const n = this.count(t, exclusions);
        if (this.test(r, String(n), String(n), t.text, undefined)) any = true;
        continue;
      }
      if (t.map) {
        if (this.testMap(r, t, exclusions)) any = true;
        continue;
      }
      const c = (t.cid >= 0 ? this.slots[t.cid] : undefined) ?? this.collectionOf(t);
      const values = c.values;
      for (let k = 0; k < values.length; k++) {
        const lname = c.lnames[k] as string;
        if (t.key !== undefined && lname !== t.key) continue;
        if (t.regex !== undefined && !t.regex.test(c.names[k] as string)) continue;
        if (exclusions.length > 0 && excluded(t.collection, c.names[k] as string, lname, exclusions)) continue;
        if (this.test(r, values[k] as string, undefined, t.collection, c.scalar ? undefined : (c.names[k] as string))) any = true;
      }
    }
    return any;
  }

  /** TX and the other maps, read in place: TX:name is one lookup. */
  private testMap(r: Rule, t: Target, exclusions: readonly Target[]): boolean {
    const map = this.maps.get(t.collection);
    if (map === undefined) return false;
    if (t.key !== undefined) {
      const v = map.get(t.key);
      if (v === undefined) return false;
      if (exclusions.length > 0 && excluded(t.collection, t.key, t.key, exclusions)) return false;
      return this.test(r, v, undefined, t.collection, t.key);
    }
    let any = false;
    // a capturing rule writes TX while it reads it: read a snapshot then
    for (const [k, v] of r.capture ? [...map] : map) {
      if (t.regex !== undefined && !t.regex.test(k)) continue;
      if (exclusions.length > 0 && excluded(t.collection, k, k, exclusions)) continue;
      if (this.test(r, v, undefined, t.collection, k)) any = true;
    }
    return any;
  }

  /** Transform, operate, record. `fixed`: a count (not transformed). */
  private test(r: Rule, value: string, fixed: string | undefined, collection: string, entry: string | undefined): boolean {
    if (r.multiMatch && fixed === undefined) return this.testMulti(r, value, entry === undefined ? collection : `${collection}:${entry}`);
    const v = fixed ?? this.transform(r.transforms, value);
    const hit = r.operator.fn(v, this) !== r.negated;
    // the variable's name is made only for a match (MATCHED_VAR_NAME)
    if (hit) this.recordMatch(r, entry === undefined ? collection : `${collection}:${entry}`, v);
    return hit;
  }

  private testMulti(r: Rule, value: string, name: string): boolean {
    let v = value;
    let hit = r.operator.fn(v, this) !== r.negated;
    for (const fn of r.transforms.fns) {
      if (hit) break;
      const next = fn(v);
      if (next === v) continue;
      v = next;
      hit = r.operator.fn(v, this) !== r.negated;
    }
    if (hit) this.recordMatch(r, name, v);
    return hit;
  }

  private recordMatch(r: Rule, name: string, value: string): void {
    this.matchedVar = value;
    this.matchedVarName = name;
    (this.curMatched ??= new ListBuilder()).add(name, value);
    this.captureToTx();
    // setvar runs on each matched variable, with that match's captures, as ModSecurity v3 does:
    // a rule that a chained rule follows sets TX before the chained rule runs (CRS 920420/
    // 920440/920450 set TX this way for the chained rule to read), and a rule matching two
    // arguments adds its score twice (CRS 942432 on two dates).
    this.setVars(r);
  }

  private setVars(r: Rule): void {
    for (const sv of r.setvars) this.setVar(sv.collection, expandMacro(sv.name, this), sv.value === undefined ? undefined : expandMacro(sv.value, this), sv.op);
  }

  private captureToTx(): void {
    const caps = this.captures;
    if (caps === undefined || caps.length === 0) return;
    const tx = this.maps.get('TX') as Map<string, string>;
    for (let i = 0; i < 10; i++) {
      const v = caps[i];
      if (v !== undefined) tx.set(String(i), v);
    }
  }

  transform(chain: TransformChain, value: string): string {
    const fns = chain.fns;
    if (fns.length === 0) return value;
    let m = this.memo[chain.id];
    if (m === undefined) {
      m = new Map();
      this.memo[chain.id] = m;
    } else {
      const hit = m.get(value);
      if (hit !== undefined) return hit;
    }
    let v = value;
    const tids = chain.tids;
    for (let i = 0; i < fns.length; i++) {
      // the same step on the same input is shared by every chain holding it (the CRS's chains
      // differ in a step or two); transformations are pure functions of their input
      const tid = tids[i] as number;
      let sm = this.stepMemo[tid];
      if (sm === undefined) {
        sm = new Map();
        this.stepMemo[tid] = sm;
      }
      let out = sm.get(v);
      if (out === undefined) {
        out = (fns[i] as (s: string) => string)(v);
        sm.set(v, out);
      }
      v = out;
    }
    m.set(value, v);
    return v;
  }

  literalsIn(filters: LiteralFilters, value: string): Uint8Array {
    let m = this.literalMemo;
    if (m === undefined || this.literalFilters !== filters) {
      m = new Map();
      this.literalMemo = m;
      this.literalFilters = filters;
    }
    let seen = m.get(value);
    if (seen === undefined) {
      seen = filters.scan(value);
      m.set(value, seen);
    }
    return seen;
  }

  private count(t: Target, exclusions: readonly Target[]): number {
    if (t.map) {
      const map = this.maps.get(t.collection);
      if (map === undefined) return 0;
      if (t.key !== undefined) return map.has(t.key) ? 1 : 0;
      let n = 0;
      for (const k of map.keys()) if (t.regex === undefined || t.regex.test(k)) n++;
      return n;
    }
    const c = this.collection(t.collection);
    let n = 0;
    for (let k = 0; k < c.values.length; k++) {
      const lname = c.lnames[k] as string;
      if (t.key !== undefined && lname !== t.key) continue;
      if (t.regex !== undefined && !t.regex.test(c.names[k] as string)) continue;
      if (exclusions.length > 0 && excluded(t.collection, c.names[k] as string, lname, exclusions)) continue;
      n++;
    }
    return n;
  }

  private dynamicExclusions(head: Rule, base: readonly Target[]): readonly Target[] {
    let out: Target[] | undefined;
    for (const rt of this.removedTargets as RemovedTargets[]) {
      const hit = rt.ranges !== undefined ? inRanges(head.id, rt.ranges) : head.tags.some((tag) => (rt.tag as RegExp).test(tag));
      if (hit) (out ??= [...base]).push(...rt.targets);
    }
    return out ?? base;
  }

  private afterMatch(head: Rule): void {
    for (let r: Rule | undefined = head; r !== undefined; r = r.chained) {
      this.currentRule = r;
      for (const c of r.ctls) this.ctl(c);
    }
    this.currentRule = head;
    if (head.log) {
      this.matched.push({
        id: head.id,
        phase: head.phase,
        msg: head.msg === undefined ? '' : expandMacro(head.msg, this),
        data: head.logdata === undefined ? '' : expandMacro(head.logdata, this),
        severity: head.severity,
        tags: head.tags,
      });
    }
    // compileRules resolved `block` to the phase's SecDefaultAction (status, URL) already
    const action = head.disruptive;
    const { redirect, allow, status } = head;
    if (action === 'allow') {
      // v3 runs no disruptive action unless SecRuleEngine is On
      if (this.mode !== 'On') return;
      const scope = allow ?? 'all';
      this.allowedBy ??= { ruleId: head.id, scope };
      if (scope === 'all') this.allowed = true;
      else this.allowScope = scope;
      return;
    }
    let i: Interruption | undefined;
    if (action === 'deny' || action === 'drop') i = { ruleId: head.id, action, status: status ?? 403 };
    else if (action === 'redirect' && redirect !== undefined) {
      // v3 expands the URL without the rule at hand: %{RULE.*} is empty there (nginx's reference
      // answers Location: /x?id= for redirect:'/x?id=%{rule.id}'); the rest expands as anywhere
      this.currentRule = undefined;
      const url = expandMacro(redirect, this);
      this.currentRule = head;
      i = { ruleId: head.id, action, status: status !== undefined && status >= 301 && status <= 307 ? status : 302, url };
    }
    if (i === undefined) return;
    if (this.mode === 'On') this.interruption = i;
    else this.wouldInterrupt ??= i;
  }

  /** What the request ended with: the interruption's action, allow, or pass. */
  get action(): WafAction {
    if (this.interruption !== undefined) return this.interruption.action;
    return this.allowedBy !== undefined ? 'allow' : 'pass';
  }

  private setVar(collection: string, name: string, value: string | undefined, op: '=' | '+' | '-'): void {
    let map = this.maps.get(collection);
    if (map === undefined) {
      map = new Map();
      this.maps.set(collection, map);
    }
    if (value === undefined) {
      map.delete(name);
      return;
    }
    if (op === '=') map.set(name, value);
    else {
      const cur = toInt(map.get(name) ?? '0');
      map.set(name, String(op === '+' ? cur + toInt(value) : cur - toInt(value)));
    }
  }

  private ctl(c: Ctl): void {
    switch (c.kind) {
      case 'ruleRemoveById':
        (this.removedIds ??= []).push(...c.ranges);
        break;
      case 'ruleRemoveByTag':
        (this.removedTags ??= []).push(c.tag);
        break;
      case 'ruleRemoveTargetById':
        (this.removedTargets ??= []).push({ ranges: c.ranges, targets: c.targets });
        break;
      case 'ruleRemoveTargetByTag':
        (this.removedTargets ??= []).push({ tag: c.tag, targets: c.targets });
        break;
      case 'ruleEngine':
        this.mode = c.mode;
        break;
      case 'requestBodyProcessor':
        this.bodyProcessor = c.processor;
        break;
      case 'requestBodyAccess':
        this.requestBodyAccess = c.on;
        break;
      case 'forceRequestBodyVariable':
        this.forceRequestBodyVariable = c.on;
        break;
      case 'ignored':
        break;
    }
  }

  macroValue(collection: string, key: string | undefined): string {
    if (MAP_COLLECTIONS.has(collection)) return key === undefined ? '' : (this.maps.get(collection)?.get(key) ?? '');
    switch (collection) {
      case 'MATCHED_VAR':
        return this.matchedVar;
      case 'MATCHED_VAR_NAME':
        return this.matchedVarName;
      case 'RULE': {
        const r = this.currentRule;
        if (r === undefined) return '';
        if (key === 'id') return String(r.id);
        if (key === 'msg') return r.msg === undefined ? '' : expandMacro(r.msg, this);
        if (key === 'severity') return r.severity === undefined ? '' : String(r.severity);
        if (key === 'ver') return r.ver ?? '';
        if (key === 'logdata') return r.logdata === undefined ? '' : expandMacro(r.logdata, this);
        return '';
      }
      default: {
        const c = this.collection(collection);
        if (key === undefined) return c.values[0] ?? '';
        const at = c.lnames.indexOf(key);
        return at < 0 ? '' : (c.values[at] as string);
      }
    }
  }

  private collectionOf(t: Target): Collection {
    const c = this.collection(t.collection);
    if (t.cid >= 0) this.slots[t.cid] = c;
    return c;
  }

  /** A collection's entries for this request (cached; TX and friends are read live). */
  collection(name: string): Collection {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    if (MAP_COLLECTIONS.has(name)) return this.mapCollection(name);
    if (name === 'MATCHED_VARS' || name === 'MATCHED_VARS_NAMES') {
      // the previous rule's matches (a chained rule looks at its parent's)
      const m = this.prevMatched;
      if (m === undefined) return EMPTY;
      if (name === 'MATCHED_VARS') return m;
      const b = new ListBuilder();
      for (const n of m.names) b.add(n, n);
      return b;
    }
    if (name === 'MATCHED_VAR') return scalar(name, this.matchedVar);
    if (name === 'MATCHED_VAR_NAME') return scalar(name, this.matchedVarName);
    if (DYNAMIC_COLLECTIONS.has(name)) return this.build(name);
    let c = this.cache.get(name);
    if (c === undefined) {
      c = this.build(name);
      this.cache.set(name, c);
    }
    return c;
  }

  private mapCollection(name: string): Collection {
    const map = this.maps.get(name);
    if (map === undefined || map.size === 0) return EMPTY;
    const b = new ListBuilder();
    for (const [k, v] of map) b.add(k, v);
    return b;
  }

  private build(name: string): Collection {
    const req = this.request;
    const body = this.body;
    switch (name) {
      case 'ARGS_GET':
      case 'ARGS_GET_NAMES': {
        const args = new ListBuilder();
        const names = new ListBuilder();
        if (this.uri.query !== undefined) parseUrlEncoded(this.uri.query, args, names, urlDecode);
        this.cache.set('ARGS_GET', args);
        this.cache.set('ARGS_GET_NAMES', names);
        return name === 'ARGS_GET' ? args : names;
      }
      case 'ARGS_POST':
        return body?.args ?? EMPTY;
      case 'ARGS_POST_NAMES': {
        const b = new ListBuilder();
        for (const n of body?.args?.names ?? []) b.add(n, n);
        return b;
      }
      case 'ARGS':
        return concat(this.collection('ARGS_GET'), this.collection('ARGS_POST'));
      case 'ARGS_NAMES':
        return concat(this.collection('ARGS_GET_NAMES'), this.collection('ARGS_POST_NAMES'));
      case 'ARGS_COMBINED_SIZE': {
        const a = this.collection('ARGS');
        let n = 0;
        for (let i = 0; i < a.values.length; i++) n += (a.names[i] as string).length + (a.values[i] as string).length;
        return scalar(name, String(n));
      }
      case 'REQUEST_METHOD':
        return scalar(name, req.method);
      case 'REQUEST_PROTOCOL':
        return scalar(name, HTTP_VERSION[req.httpVersion] ?? `HTTP/${req.httpVersion}`);
      case 'REQUEST_LINE':
        return scalar(name, `${req.method} ${req.target} ${HTTP_VERSION[req.httpVersion] ?? `HTTP/${req.httpVersion}`}`);
      case 'REQUEST_URI':
        return scalar(name, this.uri.uri);
      case 'REQUEST_URI_RAW':
        return scalar(name, req.target);
      case 'REQUEST_FILENAME':
      case 'PATH_INFO':
        return scalar(name, urlDecode(this.uri.path));
      case 'REQUEST_BASENAME': {
        const p = urlDecode(this.uri.path);
        const at = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
        // empty, not absent, when the path ends in '/' (or has none): v3's anchored variables
        // always give one value, so a negated operator on it matches (the CRS's 920200 chain)
        return scalar(name, at >= 0 && at + 1 < p.length ? p.slice(at + 1) : '');
      }
      case 'QUERY_STRING':
        return scalar(name, this.uri.query ?? '');
      case 'REQUEST_HEADERS':
      case 'REQUEST_HEADERS_NAMES': {
        const h = new ListBuilder();
        const n = new ListBuilder();
        for (let i = 0; i + 1 < req.headers.length; i += 2) {
          h.add(req.headers[i] as string, req.headers[i + 1] as string);
          n.add(req.headers[i] as string, req.headers[i] as string);
        }
        this.cache.set('REQUEST_HEADERS', h);
        this.cache.set('REQUEST_HEADERS_NAMES', n);
        return name === 'REQUEST_HEADERS' ? h : n;
      }
      case 'REQUEST_COOKIES':
      case 'REQUEST_COOKIES_NAMES': {
        const c = new ListBuilder();
        const n = new ListBuilder();
        for (let i = 0; i + 1 < req.headers.length; i += 2) {
          if ((req.headers[i] as string).toLowerCase() === 'cookie') parseCookies(req.headers[i + 1] as string, c, n);
        }
        this.cache.set('REQUEST_COOKIES', c);
        this.cache.set('REQUEST_COOKIES_NAMES', n);
        return name === 'REQUEST_COOKIES' ? c : n;
      }
      case 'REQUEST_BODY':
        // the raw body whatever the processor (v3 sets it for every one; there is no
        // forceRequestBodyVariable to ask for it), and empty, not absent, without one
        return scalar(name, this.rawBody);
      case 'REQUEST_BODY_LENGTH':
        return scalar(name, String(this.rawBody.length));
      case 'REQBODY_ERROR':
      case 'REQBODY_PROCESSOR_ERROR':
        return scalar(name, body?.error === undefined ? '0' : '1');
      case 'REQBODY_ERROR_MSG':
        return scalar(name, body?.error ?? '');
      case 'REQBODY_PROCESSOR':
        // empty, not absent, when none: the CRS's 901340 tests it with a negated @rx
        return scalar(name, this.bodyProcessor ?? '');
      case 'REMOTE_ADDR':
        return scalar(name, req.remoteAddr);
      case 'REMOTE_HOST':
        return scalar(name, req.remoteAddr);
      case 'REMOTE_PORT':
        return scalar(name, String(req.remotePort));
      case 'SERVER_NAME':
        return scalar(name, req.serverName ?? '');
      case 'SERVER_PORT':
        return scalar(name, String(req.serverPort ?? 0));
      case 'UNIQUE_ID':
        return scalar(name, req.id);
      case 'DURATION':
        // microseconds since the transaction started, as ModSecurity v3 counts
        return scalar(name, String(Math.round((performance.now() - this.started) * 1000)));
      case 'TIME_EPOCH':
        return scalar(name, String(Math.floor(Date.now() / 1000)));
      case 'TIME':
        return scalar(name, new Date().toISOString().slice(11, 19));
      case 'FULL_REQUEST_LENGTH': {
        let n = req.method.length + req.target.length + 12;
        for (const h of req.headers) n += h.length + 2;
        return scalar(name, String(n + this.rawBody.length));
      }
      case 'FILES':
        return body?.files ?? EMPTY;
      case 'FILES_NAMES':
        return body?.filesNames ?? EMPTY;
      case 'FILES_SIZES':
        return body?.filesSizes ?? EMPTY;
      case 'FILES_COMBINED_SIZE': {
        let n = 0;
        for (const v of body?.filesSizes?.values ?? []) n += Number(v);
        return scalar(name, String(n));
      }
      case 'MULTIPART_PART_HEADERS':
        return body?.partHeaders ?? EMPTY;
      case 'XML':
        return body?.xml ?? EMPTY;
      case 'RESPONSE_STATUS':
        return this.resp === undefined ? EMPTY : scalar(name, String(this.resp.status));
      case 'RESPONSE_PROTOCOL':
        return this.resp === undefined ? EMPTY : scalar(name, HTTP_VERSION[this.resp.httpVersion] ?? `HTTP/${this.resp.httpVersion}`);
      case 'RESPONSE_HEADERS':
      case 'RESPONSE_HEADERS_NAMES': {
        const h = new ListBuilder();
        const n = new ListBuilder();
        const fields = this.resp?.headers ?? [];
        for (let i = 0; i + 1 < fields.length; i += 2) {
          h.add(fields[i] as string, fields[i + 1] as string);
          n.add(fields[i] as string, fields[i] as string);
        }
        this.cache.set('RESPONSE_HEADERS', h);
        this.cache.set('RESPONSE_HEADERS_NAMES', n);
        return name === 'RESPONSE_HEADERS' ? h : n;
      }
      case 'RESPONSE_CONTENT_TYPE':
        // the Content-Type field as sent; absent without one (v3 sets it from the field only)
        return scalar(name, this.resp === undefined ? undefined : headerValue(this.resp.headers, 'content-type'));
      case 'RESPONSE_CONTENT_LENGTH':
        return scalar(name, this.resp === undefined ? undefined : headerValue(this.resp.headers, 'content-length'));
      case 'RESPONSE_BODY':
        // empty, not absent, when none was read (v3's response body is always there)
        return scalar(name, this.respBody ?? '');
      case 'OUTBOUND_DATA_ERROR':
        return scalar(name, this.outboundDataError ? '1' : '0');
      default: {
        const flag = body?.multipartFlags?.get(name);
        if (flag !== undefined) return scalar(name, flag);
        if (name.startsWith('MULTIPART_') || name === 'URLENCODED_ERROR' || name === 'INBOUND_DATA_ERROR') return scalar(name, '0');
        return EMPTY;
      }
    }
  }
}

function concat(a: Collection, b: Collection): Collection {
  if (b.values.length === 0) return a;
  if (a.values.length === 0) return b;
  return { names: [...a.names, ...b.names], lnames: [...a.lnames, ...b.lnames], values: [...a.values, ...b.values], scalar: false };
}

function excluded(collection: string, name: string, lname: string, exclusions: readonly Target[]): boolean {
  for (const e of exclusions) {
    if (e.collection !== collection) continue;
    if (e.key === undefined && e.regex === undefined) return true;
    if (e.key !== undefined && e.key === lname) return true;
    if (e.regex !== undefined && e.regex.test(name)) return true;
  }
  return false;
}

function headerValue(headers: readonly string[], lname: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === lname) return headers[i + 1];
  return undefined;
}

/**
 * The body processor a Content-Type selects before phase 1, as ModSecurity does for forms and
 * multipart, and as its recommended configuration does for JSON (rule 200001) and XML (200000).
 */
export function processorFor(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const ct = contentType.toLowerCase();
  if (ct.startsWith('application/x-www-form-urlencoded')) return 'URLENCODED';
  if (ct.startsWith('multipart/form-data')) return 'MULTIPART';
  if (/^application\/(?:[a-z0-9.+-]*\+)?json\b/.test(ct)) return 'JSON';
  // ModSecurity's recommended rule 200000: ^(?:application(?:/soap\+|/)|text/)xml
  if (/^(?:application(?:\/soap\+|\/)|text\/)xml/.test(ct)) return 'XML';
  return undefined;
}
