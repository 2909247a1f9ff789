// The WAF engine's front: loads a CRS installation with usher's own setup (the values a
// crs-setup.conf would set, as SecAction 900000-style TX variables from usher's config), once,
// and makes a Transaction per request. The engine knows nothing of usher's pipeline:
// src/filters/waf is its phase adapter.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { processBody } from './body.js';
import { loadRuleFiles } from './load.js';
import { type Directive, parseSecLang } from './parse.js';
import { type RuleSet, compileRules } from './rules.js';
import { type Exclusions, Transaction, type WafRequest } from './transaction.js';

export interface WafOptions {
  /** A CRS installation: its directory (with rules/) or a rule file glob. */
  readonly crs: string;
  readonly paranoiaLevel: 1 | 2 | 3 | 4;
  /** When set, detection runs at this higher level while blocking stays at paranoiaLevel. */
  readonly executingParanoiaLevel?: number;
  readonly inboundThreshold: number;
  readonly outboundThreshold: number;
  readonly mode: 'block' | 'detection_only';
  /** SecRequestBodyLimit (bytes). */
  readonly requestBodyLimit: number;
  /** SecResponseBodyAccess, SecResponseBodyLimit (bytes), its action, SecResponseBodyMimeType. */
  readonly responseBodyAccess?: boolean;
  readonly responseBodyLimit?: number;
  readonly responseBodyLimitAction?: 'Reject' | 'ProcessPartial';
  readonly responseBodyMimeTypes?: readonly string[];
  readonly maxArgs?: number;
  readonly maxJsonDepth?: number;
  /** Extra SecLang after the CRS (operator-written exclusions, SecRuleRemoveById...). */
  readonly extraRules?: readonly string[];
  readonly allowedMethods?: string;
}

/** The setup a crs-setup.conf would hold, from usher's options (ids in the 900000 range). */
export function setupRules(o: WafOptions): string {
  const lines = [
    `SecRuleEngine ${o.mode === 'block' ? 'On' : 'DetectionOnly'}`,
    'SecRequestBodyAccess On',
    `SecRequestBodyLimit ${o.requestBodyLimit}`,
    `SecRequestBodyNoFilesLimit ${o.requestBodyLimit}`,
    `SecArgumentsLimit ${o.maxArgs ?? 1000}`,
    `SecResponseBodyAccess ${o.responseBodyAccess === true ? 'On' : 'Off'}`,
    ...(o.responseBodyMimeTypes === undefined ? [] : [`SecResponseBodyMimeType ${o.responseBodyMimeTypes.join(' ')}`]),
    ...(o.responseBodyLimit === undefined ? [] : [`SecResponseBodyLimit ${o.responseBodyLimit}`]),
    ...(o.responseBodyLimitAction === undefined ? [] : [`SecResponseBodyLimitAction ${o.responseBodyLimitAction}`]),
    'SecDefaultAction "phase:1,log,auditlog,pass"',
    'SecDefaultAction "phase:2,log,auditlog,pass"',
    `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.paranoia_level=${o.paranoiaLevel}"`,
    `SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=${o.inboundThreshold},setvar:tx.outbound_anomaly_score_threshold=${o.outboundThreshold}"`,
    'SecAction "id:900990,phase:1,pass,t:none,nolog,setvar:tx.crs_setup_version=334"',
  ];
  if (o.executingParanoiaLevel !== undefined) {
    lines.push(`SecAction "id:900001,phase:1,pass,t:none,nolog,setvar:tx.executing_paranoia_level=${o.executingParanoiaLevel}"`);
  }
  if (o.allowedMethods !== undefined) lines.push(`SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=${o.allowedMethods}'"`);
  // ModSecurity's recommended configuration refuses a body its processor could not parse
  // (rule 200002); the CRS assumes it is there.
  lines.push(
    'SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,msg:\'Failed to parse request body.\',logdata:\'%{reqbody_error_msg}\',severity:2"',
  );
  return lines.join('\n');
}

function crsFiles(crs: string): string {
  if (existsSync(join(crs, 'rules')) && statSync(join(crs, 'rules')).isDirectory()) return join(crs, 'rules', '*.conf');
  if (existsSync(crs) && statSync(crs).isDirectory()) return join(crs, '*.conf');
  return crs;
}

let backtrackGuard = false;

/**
 * V8 can finish a regex that backtracks too much on its linear-time engine (same result):
 * the guard against a catastrophic pattern meeting a hostile input, turned on once when a WAF
 * loads (it changes no result, only how a runaway match ends). Patterns with lookarounds or
 * back-references cannot fall back; the per-request time budget covers what remains.
 */
function guardBacktracking(): void {
  if (backtrackGuard) return;
  backtrackGuard = true;
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
}

export class Waf {
  readonly rules: RuleSet;
  readonly options: WafOptions;
  /** Load figures: milliseconds, directives read. */
  readonly loadMs: number;
  readonly directives: number;
  /**
   * Whether phases 3 and 4 run: SecResponseBodyAccess On (after the operator's rules) and a
   * response rule to run. Off, the response path has no WAF hook at all.
   */
  readonly responsePhases: boolean;

  constructor(options: WafOptions) {
    guardBacktracking();
    const t0 = performance.now();
    this.options = options;
    const directives: Directive[] = [
      ...parseSecLang(setupRules(options), 'usher:waf-setup'),
      ...loadRuleFiles(crsFiles(options.crs)),
    ];
    (options.extraRules ?? []).forEach((text, i) => directives.push(...parseSecLang(text, `usher:waf-rules[${i}]`)));
    this.rules = compileRules(directives);
    const s = this.rules.settings;
    this.responsePhases = s.responseBodyAccess && s.ruleEngine !== 'Off' && ((this.rules.phases[3]?.length ?? 0) > 0 || (this.rules.phases[4]?.length ?? 0) > 0);
    this.directives = directives.length;
    this.loadMs = performance.now() - t0;
  }

  transaction(request: WafRequest, exclusions?: Exclusions): Transaction {
    return new Transaction(this.rules, request, exclusions);
  }

  /**
   * Phase 2 without a body: ModSecurity runs the body processor anyway, and the XML one fails on
   * the empty document (measured: a GET or an empty POST with Content-Type text/xml is refused
   * through its REQBODY_ERROR rule; the JSON one is not, v3 skips an empty JSON body). Not with
   * request body access off (SecRequestBodyAccess Off, ctl:requestBodyAccess=Off).
   */
  noBody(tx: Transaction, contentType: string | undefined): void {
    if (tx.bodyProcessor === 'XML' && tx.requestBodyAccess) this.addBody(tx, Buffer.alloc(0), contentType);
  }

  /**
   * How much of a response body phase 4 reads, as ModSecurity decides it from the head: 0 for
   * none (a bodyless response, or a media type SecResponseBodyMimeType does not list), else
   * SecResponseBodyLimit.
   */
  responseBodyBytes(status: number, method: string, contentType: string | undefined): number {
    if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return 0;
    const s = this.rules.settings;
    const types = s.responseBodyMimeTypes;
    if (types !== undefined) {
      const semi = contentType?.indexOf(';') ?? -1;
      const media = (semi < 0 ? (contentType ?? '') : (contentType as string).slice(0, semi)).trim().toLowerCase();
      if (!types.has(media)) return 0;
    }
    return s.responseBodyLimit;
  }

  /** Parses a body with the processor the transaction chose and hands it over. */
  addBody(tx: Transaction, body: Buffer, contentType: string | undefined): void {
    // body access off: ModSecurity keeps no byte of the body and runs no processor (REQUEST_BODY
    // empty, no ARGS_POST, REQBODY_ERROR 0; measured: an empty or broken text/xml body passes)
    if (!tx.requestBodyAccess) {
      tx.setBody('', { processor: tx.bodyProcessor, error: undefined, args: undefined });
      return;
    }
    const raw = body.toString('latin1');
    const processor = tx.bodyProcessor ?? (tx.forceRequestBodyVariable ? undefined : undefined);
    tx.setBody(raw, processBody(processor, raw, contentType, { maxArgs: this.rules.settings.argumentsLimit, maxDepth: this.options.maxJsonDepth ?? 512 }, body));
  }
}
