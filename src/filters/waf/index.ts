// `waf:` — the rule engine's phase adapter (the engine is src/waf/). On every proxied route
// (unless it says `waf: false`):
//   request           phase 1 (request headers) on the request as the client sent it
//   request_body      phase 2 with the body (bounded by request_body_limit; larger: 413)
//   upstream_request  phase 2 for a request without a body (request_body runs only for bodies)
//   response_inspect  with response_body_access: phase 3 on the upstream's head and phase 4 on
//                     its body, held up to SecResponseBodyLimit before anything goes downstream
//                     (a block replaces the whole response with 403 waf_blocked)
//   done              the audit log line of a blocked or flagged request
// The WAF reads ctx.headers (node's rawHeaders: every field as received, names with "_"
// included: usher drops those only from the copy it sends upstream, src/proxy/headers.ts) and
// ctx.target (the raw request target), never the normalised view routing uses: what
// ModSecurity sees behind nginx with `ignore_invalid_headers off`. A disruptive action is
// answered as ModSecurity v3 behind nginx answers it: deny with the rule's status (403 by
// default) and usher's error body (request id, waf_blocked); redirect with 302 (or the rule's
// 301-307) and Location; drop with no answer at all (the connection or HTTP/2 stream is reset);
// allow and pass let the request through. The access log line carries the matched rule ids,
// the anomaly score and the action (waf_action).
import type { RouteConfig } from '../../config/types.js';
import { addAccessLogFields } from '../../observability/log-fields.js';
import type { RouteFilterDefinition, RouteFilterDeps } from '../../pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse, type RequestBodyHook, type RequestContext, type ResponseHead, type ResponseInspectHook } from '../../pipeline/types.js';
import { localReplyFor, wantsJson } from '../../proxy/local-reply.js';
import type { Exclusions, Transaction, WafRequest } from '../../waf/transaction.js';
import type { RouteWaf } from './config.js';
import { compileExclusions, type WafRuntime } from './runtime.js';

export { WafRuntime } from './runtime.js';

interface WafState {
  readonly tx: Transaction;
  phase2: boolean;
  blocked: boolean;
  /** Phases 3-4 ran (the access log then has waf_outbound_score). */
  response: boolean;
  /** The response body was longer than SecResponseBodyLimit (its action said Reject: blocked). */
  responseOverLimit: boolean;
}

const kWaf = stateKey<WafState>('waf');
const DATA_MAX = 200;

function requestOf(ctx: RequestContext): WafRequest {
  return {
    id: ctx.requestId,
    method: ctx.method,
    target: ctx.target,
    httpVersion: ctx.httpVersion,
    headers: ctx.headers,
    remoteAddr: ctx.clientAddress,
    remotePort: ctx.clientPort,
  };
}

/**
 * A redirect URL as a field value: its macros may bring in request bytes (a decoded %0d%0a),
 * which would split the head; control characters and what node:http refuses are percent-encoded.
 */
function fieldSafe(url: string): string {
  return url.replace(/[^\x20-\x7e\x80-\xff]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function headerOf(headers: readonly string[], lname: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if ((headers[i] as string).length === lname.length && (headers[i] as string).toLowerCase() === lname) return headers[i + 1];
  return undefined;
}

export class WafFilter implements Filter {
  readonly name = 'waf';
  readonly requestBody: RequestBodyHook;
  /** Only when the rule set runs phases 3-4 (SecResponseBodyAccess On): else no response hook at all. */
  readonly responseInspect: ResponseInspectHook | undefined;
  private readonly exclusions: Exclusions;

  constructor(
    private readonly rt: WafRuntime,
    private readonly route: RouteWaf,
  ) {
    this.exclusions = compileExclusions(route.exclude);
    this.requestBody = { maxBytes: rt.config.request_body_limit, inspect: (ctx, body) => this.inspect(ctx, body) };
    this.responseInspect = rt.waf.responsePhases ? { head: (ctx, head) => this.inspectResponseHead(ctx, head), body: (ctx, _head, body, complete) => this.inspectResponseBody(ctx, body, complete) } : undefined;
  }

  request(ctx: RequestContext): LocalResponse | undefined {
    const tx = this.rt.waf.transaction(requestOf(ctx), this.exclusions);
    if (this.route.mode === 'detection_only' && tx.mode === 'On') tx.mode = 'DetectionOnly';
    tx.setBudget(this.rt.config.time_budget);
    const st: WafState = { tx, phase2: false, blocked: false, response: false, responseOverLimit: false };
    ctx.set(kWaf, st);
    tx.runPhase(1);
    return this.verdict(ctx, st);
  }

  private inspect(ctx: RequestContext, body: Buffer): LocalResponse | undefined {
    const st = ctx.get(kWaf);
    if (st === undefined || st.phase2) return undefined;
    st.phase2 = true;
    this.rt.waf.addBody(st.tx, body, ctx.header('content-type'));
    st.tx.runPhase(2);
    return this.verdict(ctx, st);
  }

  upstreamRequest(ctx: RequestContext): LocalResponse | undefined {
    const st = ctx.get(kWaf);
    if (st === undefined || st.phase2) return undefined;
    st.phase2 = true;
    this.rt.waf.noBody(st.tx, ctx.header('content-type'));
    st.tx.runPhase(2);
    return this.verdict(ctx, st);
  }

  /** Phase 3 on the upstream's head; then phase 4 at once (a body it does not read) or the bytes of the body to read first. */
  private inspectResponseHead(ctx: RequestContext, head: ResponseHead): LocalResponse | number | undefined {
    const st = ctx.get(kWaf);
    // an `allow` (or a spent time budget) ended evaluation: no phase runs, nothing to hold
    if (st === undefined || st.blocked || st.tx.allowed || st.tx.budgetExceeded) return undefined;
    st.response = true;
    const tx = st.tx;
    tx.setResponse({ status: head.status, httpVersion: ctx.httpVersion === '2' ? '2' : '1.1', headers: head.headers });
    tx.runPhase(3);
    const r = this.verdict(ctx, st);
    if (r !== undefined) return r;
    const n = this.rt.waf.responseBodyBytes(head.status, ctx.method, headerOf(head.headers, 'content-type'));
    if (n > 0) return n;
    tx.runPhase(4);
    return this.verdict(ctx, st);
  }

  /** Phase 4 on the body read (its first SecResponseBodyLimit bytes). */
  private inspectResponseBody(ctx: RequestContext, body: Buffer, complete: boolean): LocalResponse | undefined {
    const st = ctx.get(kWaf);
    if (st === undefined || st.blocked) return undefined;
    const tx = st.tx;
    st.responseOverLimit = !complete;
    if (!complete && this.rt.waf.rules.settings.responseBodyLimitAction === 'Reject' && tx.mode === 'On') {
      // v3: "Response body limit is marked to reject the request" (403), phase 4 does not run
      st.blocked = true;
      addAccessLogFields(ctx, { waf_action: 'deny' });
      return { ...localReplyFor('waf_blocked', ctx.requestId, wantsJson(ctx.headers)), reason: 'waf_blocked' };
    }
    tx.setResponseBody(body.toString('latin1'), !complete);
    tx.runPhase(4);
    return this.verdict(ctx, st);
  }

  private verdict(ctx: RequestContext, st: WafState): LocalResponse | undefined {
    const tx = st.tx;
    const ids = tx.matched.map((m) => m.id);
    const budget = tx.interruption === undefined && tx.budgetExceeded && this.rt.config.on_budget_exceeded === 'block' && tx.mode === 'On';
    addAccessLogFields(ctx, { waf_rules: ids, waf_score: tx.anomalyScore, waf_action: budget ? 'deny' : tx.action });
    if (st.response) addAccessLogFields(ctx, { waf_outbound_score: tx.outboundScore });
    const it = tx.interruption;
    if (it === undefined && !budget) return undefined;
    st.blocked = true;
    const json = wantsJson(ctx.headers);
    if (it === undefined) return { ...localReplyFor('waf_blocked', ctx.requestId, json), reason: 'waf_blocked' };
    switch (it.action) {
      case 'drop':
        return { status: it.status, drop: true, reason: 'waf_blocked' };
      case 'redirect':
        return { status: it.status, headers: ['location', fieldSafe(it.url ?? '/'), 'cache-control', 'no-store'], reason: 'waf_blocked' };
      default:
        return { ...localReplyFor('waf_blocked', ctx.requestId, json, it.status), reason: 'waf_blocked' };
    }
  }

  done(ctx: RequestContext): void {
    const st = ctx.get(kWaf);
    const audit = this.rt.audit;
    if (st === undefined || audit === undefined || ctx.explaining) return;
    const tx = st.tx;
    if (tx.matched.length === 0 && !tx.budgetExceeded && !st.responseOverLimit) return;
    audit.write({
      time: new Date().toISOString(),
      request_id: ctx.requestId,
      client: ctx.clientAddress,
      method: ctx.method,
      target: ctx.target,
      host: ctx.header('host') ?? null,
      route: ctx.route?.name ?? null,
      action: st.blocked ? 'blocked' : tx.wouldInterrupt !== undefined ? 'detected' : 'flagged',
      // the disruptive action taken (deny, drop, redirect, allow, pass) and, in detection
      // mode, the one that would have been
      disruptive: st.blocked && tx.interruption === undefined ? 'deny' : tx.action,
      would_disrupt: tx.wouldInterrupt?.action ?? null,
      allowed_by: tx.allowedBy?.ruleId ?? null,
      status: ctx.response?.status ?? null,
      mode: tx.mode,
      anomaly_score: tx.anomalyScore,
      // phases 3-4 (null when they did not run: no response_body_access, or blocked before)
      outbound_anomaly_score: st.response ? tx.outboundScore : null,
      response_body_over_limit: st.responseOverLimit,
      interrupted_by: tx.interruption?.ruleId ?? tx.wouldInterrupt?.ruleId ?? null,
      budget_exceeded: tx.budgetExceeded,
      rules: tx.matched.map((m) => ({
        id: m.id,
        msg: m.msg,
        data: m.data.length > DATA_MAX ? `${m.data.slice(0, DATA_MAX)}...` : m.data,
        severity: m.severity ?? null,
      })),
    });
  }

  explain(): string {
    const c = this.rt.config;
    const ex = this.route.exclude;
    const parts = [`CRS at paranoia level ${c.paranoia_level}`, this.route.mode, `${this.rt.waf.rules.rules.size} rules`];
    if (ex.rules.length + ex.tags.length + ex.targets.length > 0) parts.push(`${ex.rules.length + ex.tags.length + ex.targets.length} exclusions`);
    return `waf (${parts.join(', ')})`;
  }
}

export const waf: RouteFilterDefinition = {
  name: 'waf',
  create: (rc: RouteConfig, deps: RouteFilterDeps) => (rc.waf === undefined || deps.waf === undefined ? undefined : new WafFilter(deps.waf, rc.waf)),
};
