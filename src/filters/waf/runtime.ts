// The WAF of one config: the CRS loaded and compiled once (src/waf/engine.ts), the audit log,
// and the per-route exclusions compiled from usher's config. A reload whose `waf:` section is
// unchanged keeps the loaded rule set (loading the CRS takes about half a second).
import { createWriteStream, type WriteStream } from 'node:fs';
import type { WafConfig, WafExclusionConfig } from './config.js';
import { Waf } from '../../waf/engine.js';
import { compileTarget, tagPattern } from '../../waf/rules.js';
import { parseTargets } from '../../waf/syntax.js';
import type { Exclusions, RemovedTargets } from '../../waf/transaction.js';


export function compileExclusions(e: WafExclusionConfig): Exclusions {
  const targets: RemovedTargets[] = [];
  for (const t of e.targets) {
    const compiled = t.targets.flatMap((text) => parseTargets(text).map(compileTarget));
    if (t.rules.length > 0) targets.push({ ranges: t.rules, targets: compiled });
    for (const tag of t.tags) targets.push({ tag: tagPattern(tag), targets: compiled });
  }
  return { ids: e.rules, tags: e.tags.map(tagPattern), targets };
}

/** One JSON line per blocked or flagged request, appended to a file opened on first use. */
export class AuditLog {
  private stream: WriteStream | undefined;
  private failed = false;
  constructor(readonly path: string) {}

  write(record: Record<string, unknown>): void {
    if (this.failed) return;
    if (this.stream === undefined) {
      this.stream = createWriteStream(this.path, { flags: 'a' });
      // a full disk or a bad path must not take the process down: stop auditing, say so once
      this.stream.on('error', (err) => {
        this.failed = true;
        process.emitWarning(`waf audit log ${this.path}: ${err.message}`);
      });
    }
    this.stream.write(`${JSON.stringify(record)}\n`);
  }

  close(): void {
    this.stream?.end();
    this.stream = undefined;
  }
}

export class WafRuntime {
  readonly waf: Waf;
  readonly audit: AuditLog | undefined;
  private readonly key: string;

  private constructor(readonly config: WafConfig) {
    this.key = JSON.stringify(config);
    this.waf = new Waf({
      crs: config.crs,
      paranoiaLevel: config.paranoia_level,
      executingParanoiaLevel: config.executing_paranoia_level,
      inboundThreshold: config.inbound_threshold,
      outboundThreshold: config.outbound_threshold,
      mode: config.mode,
      requestBodyLimit: config.request_body_limit,
      responseBodyAccess: config.response_body_access,
      responseBodyLimit: config.response_body_limit,
      responseBodyLimitAction: config.response_body_limit_action === 'reject' ? 'Reject' : 'ProcessPartial',
      responseBodyMimeTypes: config.response_body_mime_types,
      extraRules: config.rules,
      allowedMethods: config.allowed_methods?.join(' '),
    });
    this.audit = config.audit_log === undefined ? undefined : new AuditLog(config.audit_log);
  }

  /** The previous runtime's WAF when its config is the same, else a newly loaded one. */
  static build(config: WafConfig | undefined, previous: WafRuntime | undefined): WafRuntime | undefined {
    if (config === undefined) return undefined;
    if (previous !== undefined && previous.key === JSON.stringify(config)) return previous;
    return new WafRuntime(config);
  }
}
