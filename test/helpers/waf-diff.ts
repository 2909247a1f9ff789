// The differential runner (issue 14): sends the WAF corpus byte for byte to a target (a raw
// socket per request, so targets and header names no client library sends stay as written),
// reads each target's verdict and matched rule ids its own way (a WafTarget), and compares two
// targets request by request. ModSecurity's adapter reads its JSON audit log; usher's adapter
// (usherTarget) reads the 403 waf_blocked reply and the access log, for when the engine lands.
import { connect } from 'node:net';
import type { CorpusEntry } from '../fixtures/waf-corpus/index.js';
import { auditHeader, inboundScore, type AuditRecord, type ModSecurityReference } from './modsecurity-crs.js';
import type { TestUpstream } from './upstream.js';

/** The header that tags each request with its corpus id, so a target's logs can be matched to it. */
export const TAG_HEADER = 'X-Corpus-Id';

export interface RawResponse {
  /** 0 when no status line came back (reset, timeout). */
  status: number;
  /** Response header fields, names lower-cased. */
  headers: [string, string][];
  body: string;
  error?: string;
}

/**
 * blocked: the WAF refused it (the target says how it knows); passed: it reached the upstream;
 * rejected: refused by something else (the proxy's own parser or limits); error: no answer.
 */
export type Verdict = 'blocked' | 'passed' | 'rejected' | 'error';

export interface Observation {
  verdict: Verdict;
  status: number;
  /** Matched rule ids, sorted, unique. */
  rules: string[];
  /** The inbound anomaly score when the target reports it. */
  score?: number;
}

export interface WafTarget {
  readonly name: string;
  readonly port: number;
  /** After the requests with these tags were sent: wait until the target's logs hold what they will about them. */
  settle(tags: string[]): Promise<void>;
  /** The verdict and rule ids for the request tagged `tag`, from its response and the target's logs. */
  observe(tag: string, response: RawResponse): Observation;
}

/** The bytes of one corpus request, tagged; Host, Content-Length and Connection: close added as CorpusEntry says. */
export function requestBytes(entry: CorpusEntry, tag: string | null = entry.id): Buffer {
  const body = entry.body === undefined ? null : Buffer.from(entry.body, entry.bodyBase64 ? 'base64' : 'utf8');
  const has = (name: string) => entry.headers.some(([k]) => k.toLowerCase() === name);
  const lines = [`${entry.method} ${entry.target} HTTP/${entry.version ?? '1.1'}`];
  if (!entry.noHost && !has('host')) lines.push('Host: localhost');
  for (const [k, v] of entry.headers) lines.push(`${k}: ${v}`);
  if (tag !== null) lines.push(`${TAG_HEADER}: ${tag}`);
  if (body !== null && !has('content-length')) lines.push(`Content-Length: ${body.length}`);
  if (!has('connection')) lines.push('Connection: close');
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8');
  return body === null ? head : Buffer.concat([head, body]);
}

/** Sends `bytes` on a fresh connection and reads the answer until the server closes. */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 15_000, host = '127.0.0.1'): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, host);
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1'), error));
    };
    const timer = setTimeout(() => finish(`no complete answer within ${timeoutMs} ms`), timeoutMs);
    // write, not end: nginx takes a half-closed client for one that went away (499) while it proxies.
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A reset after a complete answer (the server closed while we were still sending) is still an answer.
    socket.on('error', (err) => finish(err.message));
  });
}

function parseResponse(text: string, error?: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) return { status: 0, headers: [], body: '', error: error ?? `no status line in ${JSON.stringify(text.slice(0, 80))}` };
  const headers = head
    .split('\r\n')
    .slice(1)
    .map((l): [string, string] => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
    });
  return { status: Number(m[1]), headers, body: end >= 0 ? text.slice(end + 4) : '' };
}

export function header(r: RawResponse, name: string): string | undefined {
  return r.headers.find(([k]) => k === name)?.[1];
}

export interface CorpusResult {
  entry: CorpusEntry;
  response: RawResponse;
  observation: Observation;
}

/** Sends every entry (`concurrency` at a time), settles the target, then observes each. */
export async function runCorpus(target: WafTarget, entries: CorpusEntry[], concurrency = 4): Promise<CorpusResult[]> {
  const responses: RawResponse[] = new Array<RawResponse>(entries.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const i = next++;
      responses[i] = await sendRaw(target.port, requestBytes(entries[i]!));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  await target.settle(entries.map((e) => e.id));
  return entries.map((entry, i) => ({ entry, response: responses[i]!, observation: target.observe(entry.id, responses[i]!) }));
}

const unique = (ids: string[]): string[] => [...new Set(ids)].sort();

/** The rule ids compared by default: the CRS's (900000-999999), not a target's own base rules. */
export function isCrsRule(id: string): boolean {
  const n = Number(id);
  return n >= 900000 && n <= 999999;
}

export interface EntryComparison {
  id: string;
  category: string;
  expected: 'attack' | 'benign';
  a: Observation;
  b: Observation;
  verdictAgrees: boolean;
  rulesAgree: boolean;
  onlyA: string[];
  onlyB: string[];
}

export interface Comparison {
  entries: EntryComparison[];
  total: number;
  verdictsAgree: number;
  rulesAgree: number;
}

/** Request-by-request comparison of two runs over the same entries (rule ids through `ruleFilter`). */
export function compareRuns(a: CorpusResult[], b: CorpusResult[], ruleFilter: (id: string) => boolean = isCrsRule): Comparison {
  const byId = new Map(b.map((r) => [r.entry.id, r]));
  const entries = a.map((ra): EntryComparison => {
    const rb = byId.get(ra.entry.id);
    if (!rb) throw new Error(`compareRuns: ${ra.entry.id} is missing from the second run`);
    const ia = ra.observation.rules.filter(ruleFilter);
    const ib = rb.observation.rules.filter(ruleFilter);
    const onlyA = ia.filter((x) => !ib.includes(x));
    const onlyB = ib.filter((x) => !ia.includes(x));
    return {
      id: ra.entry.id,
      category: ra.entry.category,
      expected: ra.entry.expected,
      a: ra.observation,
      b: rb.observation,
      verdictAgrees: ra.observation.verdict === rb.observation.verdict,
      rulesAgree: onlyA.length === 0 && onlyB.length === 0,
      onlyA,
      onlyB,
    };
  });
  return { entries, total: entries.length, verdictsAgree: entries.filter((e) => e.verdictAgrees).length, rulesAgree: entries.filter((e) => e.rulesAgree).length };
}

/** Both targets get the same corpus; the comparison says where they differ. */
export async function diffTargets(a: WafTarget, b: WafTarget, entries: CorpusEntry[], ruleFilter?: (id: string) => boolean): Promise<Comparison> {
  const [ra, rb] = await Promise.all([runCorpus(a, entries), runCorpus(b, entries)]);
  return compareRuns(ra, rb, ruleFilter);
}

export interface CorpusSummary {
  attacks: number;
  blocked: number;
  benign: number;
  passed: number;
  /** Benign entries not passed, with their verdict and rules. */
  falsePositives: { id: string; verdict: Verdict; rules: string[] }[];
  /** Attack entries not blocked. */
  missed: { id: string; verdict: Verdict; rules: string[] }[];
  /** Per category: entries, blocked. */
  byCategory: Record<string, { total: number; blocked: number }>;
}

export function summarise(results: CorpusResult[]): CorpusSummary {
  const s: CorpusSummary = { attacks: 0, blocked: 0, benign: 0, passed: 0, falsePositives: [], missed: [], byCategory: {} };
  for (const { entry, observation: o } of results) {
    const c = (s.byCategory[entry.category] ??= { total: 0, blocked: 0 });
    c.total++;
    if (o.verdict === 'blocked') c.blocked++;
    if (entry.expected === 'attack') {
      s.attacks++;
      if (o.verdict === 'blocked') s.blocked++;
      else s.missed.push({ id: entry.id, verdict: o.verdict, rules: o.rules });
    } else {
      s.benign++;
      if (o.verdict === 'passed') s.passed++;
      else s.falsePositives.push({ id: entry.id, verdict: o.verdict, rules: o.rules });
    }
  }
  return s;
}

/** Polls `cond` (no fixed sleeps as synchronisation) until it holds or `timeoutMs` passes. */
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * nginx+ModSecurity: blocked when the answer did not come from the upstream (`upstreamHeader`,
 * which the test upstream sets) and the audit log has the transaction with matched rules;
 * the rule ids from the audit record. settle() sends a marker request and waits for its record:
 * records are written in the log phase, so once the marker's is there, every earlier one is too.
 */
export function modSecurityTarget(ref: ModSecurityReference, upstreamHeader = 'x-upstream', name = 'modsecurity'): WafTarget {
  const byTag = new Map<string, AuditRecord>();
  let markers = 0;
  const absorb = (): void => {
    for (const r of ref.readAudit()) {
      const tag = auditHeader(r, TAG_HEADER);
      if (tag !== undefined) byTag.set(tag, r);
    }
  };
  return {
    name,
    port: ref.port,
    async settle() {
      const tag = `marker-${++markers}-${process.pid}`;
      const marker: CorpusEntry = { id: tag, category: 'benign', expected: 'benign', method: 'GET', target: '/', headers: [['User-Agent', 'usher-waf-diff'], ['Accept', '*/*']] };
      await sendRaw(ref.port, requestBytes(marker));
      await until(() => (absorb(), byTag.has(tag)), 10_000, `the audit record of ${tag} in ${ref.auditLogFile}`);
    },
    observe(tag, response) {
      const record = byTag.get(tag);
      const rules = unique((record?.messages ?? []).map((m) => m.ruleId));
      const score = record ? inboundScore(record) : undefined;
      let verdict: Verdict;
      if (response.status === 0) verdict = 'error';
      else if (header(response, upstreamHeader) !== undefined) verdict = 'passed';
      else if (record !== undefined && record.messages.length > 0 && response.status >= 400) verdict = 'blocked';
      else verdict = 'rejected';
      return { verdict, status: response.status, rules, ...(score !== undefined ? { score } : {}) };
    },
  };
}

export interface UsherTargetOptions {
  name?: string;
  /** usher's listener port. */
  port: number;
  /** The upstream behind it (its recorded requests map a corpus tag to usher's request id). */
  upstream: TestUpstream;
  /** usher's parsed access-log lines (TestUsher.access; log.access_log on). */
  access: Record<string, unknown>[];
  /** The request-id header (proxy.request_id_header). Default x-request-id. */
  requestIdHeader?: string;
  /** Rule ids from one access-log line. Default: `waf_rules`, else `waf.rules` (ids, or objects with `id`). */
  rulesOf?: (line: Record<string, unknown>) => string[];
  /** The inbound score from one access-log line. Default: `waf_score`, else `waf.inbound_score`. */
  scoreOf?: (line: Record<string, unknown>) => number | undefined;
}

/** usher's local reply for waf_blocked: the text form ("reason: waf_blocked") or, to a client that accepts JSON, the JSON one. */
function isWafBlocked(body: string): boolean {
  if (/^reason: waf_blocked$/m.test(body)) return true;
  try {
    return (JSON.parse(body) as { reason?: unknown }).reason === 'waf_blocked';
  } catch {
    return false;
  }
}

/** `waf_rules` (ids, as the waf-engine branch writes them), else `waf.rules` (ids or objects with `id`). */
function defaultRules(line: Record<string, unknown>): string[] {
  const list = (line['waf_rules'] ?? (line['waf'] as { rules?: unknown } | undefined)?.rules ?? []) as unknown[];
  return list.map((r) => (typeof r === 'object' && r !== null ? String((r as { id: unknown }).id) : String(r)));
}

/** `waf_score`, else `waf.inbound_score`. */
function defaultScore(line: Record<string, unknown>): number | undefined {
  const score = line['waf_score'] ?? (line['waf'] as { inbound_score?: unknown } | undefined)?.inbound_score;
  return typeof score === 'number' ? score : undefined;
}

/**
 * usher with its WAF on (not used by a test yet: the engine is being built). Blocked: 403 with
 * reason waf_blocked (usher's local reply, text or JSON); passed: the upstream answered (`x-upstream`);
 * anything else: rejected. The request id comes from the reply's x-request-id, or for a request
 * that reached the upstream from what the upstream received; the access-log line with that
 * request_id gives the rule ids (rulesOf) and the score (scoreOf).
 */
export function usherTarget(o: UsherTargetOptions): WafTarget {
  const idHeader = (o.requestIdHeader ?? 'x-request-id').toLowerCase();
  const rulesOf = o.rulesOf ?? defaultRules;
  const scoreOf = o.scoreOf ?? defaultScore;
  const tagHeader = TAG_HEADER.toLowerCase();
  const requestIds = new Map<string, string>();
  const requestIdOf = (tag: string, response: RawResponse | null): string | undefined => {
    const fromReply = response ? header(response, idHeader) : undefined;
    if (fromReply !== undefined) return fromReply;
    // The upstream may be shared with another target (nginx sends no request id): take usher's.
    const seen = o.upstream.requests.find((r) => r.headers[tagHeader] === tag && typeof r.headers[idHeader] === 'string');
    return seen?.headers[idHeader] as string | undefined;
  };
  const line = (requestId: string | undefined) => (requestId === undefined ? undefined : o.access.find((l) => l['request_id'] === requestId));
  let markers = 0;
  return {
    name: o.name ?? 'usher',
    port: o.port,
    async settle() {
      // Access-log lines are written in the done phase, in order: once the marker's is there, every earlier one is.
      const marker = `usher-waf-diff-marker-${++markers}-${process.pid}`;
      const entry: CorpusEntry = { id: marker, category: 'benign', expected: 'benign', method: 'GET', target: `/?${marker}`, headers: [['User-Agent', 'usher-waf-diff'], ['Accept', '*/*']] };
      await sendRaw(o.port, requestBytes(entry));
      await until(() => o.access.some((l) => String(l['path']).includes(marker)), 10_000, `the access-log line of ${marker}`);
    },
    observe(tag, response) {
      const requestId = requestIdOf(tag, response) ?? requestIds.get(tag);
      if (requestId !== undefined) requestIds.set(tag, requestId);
      const l = line(requestId);
      const rules = unique(l ? rulesOf(l) : []);
      const score = l ? scoreOf(l) : undefined;
      let verdict: Verdict;
      if (response.status === 0) verdict = 'error';
      else if (header(response, 'x-upstream') !== undefined) verdict = 'passed';
      else if (response.status === 403 && isWafBlocked(response.body)) verdict = 'blocked';
      else verdict = 'rejected';
      return { verdict, status: response.status, rules, ...(score !== undefined ? { score } : {}) };
    },
  };
}
