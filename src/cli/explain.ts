// `usher explain --config FILE METHOD URL [-H "name: value"]... [--client-ip IP] [--json]`:
// which route takes a request and why — the winner with its file:line, why each route tried
// before it did not match, the filters that run, the rewritten upstream request, and the
// upstream (and server, when the choice is deterministic). Nothing is sent anywhere.
import { isIP } from 'node:net';
import { formatIssues, loadConfigFile } from '../config/index.js';
import type { RouteConfig, SourceLocation } from '../config/types.js';
import { AccessList, RouteAccess } from '../filters/access/index.js';
import { ExplainContext } from '../pipeline/explain-context.js';
import { Cache } from '../filters/cache/index.js';
import { realClientIp } from '../proxy/headers.js';
import type { CompiledRoute, LocalResponse, PhaseArrays } from '../pipeline/types.js';
import { explainRoute } from '../router/explain.js';
import { normalisePath, RouteRequest, splitHost, validHost, type HostPathRouter } from '../router/index.js';
import { Runtime } from '../server/runtime.js';
import type { Cluster } from '../upstream/cluster.js';
import { UsageError, type Values } from './commands.js';

const PATH_LIMIT = 10;

interface RouteRef {
  name: string;
  at: string;
  priority: number;
  match: string;
}

export interface Explanation {
  request: { method: string; url: string; host: string; path: string; normalised_path: string | null; query: string; client_ip: string };
  outcome: 'proxy' | 'respond' | 'redirect' | 'local_reply' | 'no_route' | 'unsafe_path' | 'bad_request';
  status?: number;
  location?: string;
  route?: RouteRef;
  not_matched: (RouteRef & { why: string })[];
  /** Routes tried first whose path did not match, beyond the first PATH_LIMIT: only counted. */
  not_matched_omitted: number;
  /** Routes that match too but lost to the winner (shadowed for this request). */
  also_matched: RouteRef[];
  other_hosts: number;
  filters: string[];
  /** The route's compiled chain by phase: each filter's explain() line. */
  phases: Partial<Record<string, string[]>>;
  /** The filter that answered the request itself (a redirect, a denial), when one did. */
  answered_by?: string;
  upstream_request?: { method: string; target: string; headers: [string, string][] };
  upstream?: { name: string; chosen_by: string; servers: string[]; server: string | null };
  mirror?: { upstream: string; percent: number };
  /** The route's cache: its store, this request's key, and whether it would be looked up. */
  cache?: { store: string; type: string; key: string; secondary: string | null; lookup: boolean; why: string };
  /** The access lists this client meets: each listener's with one, then the route's. */
  access?: AccessLine[];
}

export interface AccessLine {
  /** "listener 127.0.0.1:8080" or "route admin". */
  scope: string;
  /** The address judged: the client after proxy.trusted_proxies. */
  client: string;
  decision: 'allow' | 'deny';
  /** The rule that decided ("deny 10.0.0.0/8", "default deny"). */
  rule: string;
  /** When and how: "at accept (connection closed)", "per request (403 access_denied)". */
  effect: string;
}

/** `values` and `positionals` as parsed by commands.ts (the command table checks their shape). */
export async function explain(values: Values, positionals: string[]): Promise<number> {
  const file = values.config as string | undefined;
  if (file === undefined) throw new UsageError('explain', '--config FILE is required');
  const [method, url] = positionals as [string, string];
  const headers: string[] = [];
  for (const h of (values.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError('explain', `expected -H "name: value", got ${JSON.stringify(h)}`);
    headers.push(h.slice(0, colon).trim(), h.slice(colon + 1).trim());
  }
  const clientIp = (values['client-ip'] as string | undefined) ?? '127.0.0.1';
  if (isIP(clientIp) === 0) throw new UsageError('explain', `--client-ip expects an IPv4 or IPv6 address, got ${JSON.stringify(clientIp)}`);
  const target = splitUrl(url);
  if (target === undefined) throw new UsageError('explain', `expected an http:// or https:// URL, got ${JSON.stringify(url)}`);
  const result = await loadConfigFile(file);
  if (!result.ok) {
    process.stderr.write(`${formatIssues(result.errors)}\n${file}: invalid\n`);
    return 1;
  }
  if (!headers.some((_, i) => i % 2 === 0 && headers[i]!.toLowerCase() === 'host')) headers.unshift('Host', target.authority);
  // Built and never started: no pool, probe or DNS query; there is nothing to close after.
  const { runtime } = Runtime.build(result.config);
  const e = explainRequest(runtime, method.toUpperCase(), url, target, headers, clientIp);
  process.stdout.write(values.json ? `${JSON.stringify(e, null, 2)}\n` : text(e));
  return 0;
}

function splitUrl(url: string): { scheme: 'http' | 'https'; authority: string; path: string } | undefined {
  const m = /^(https?):\/\/([^/?#]+)([^#]*)/i.exec(url);
  if (!m) return undefined;
  let path = m[3] || '/';
  if (path.startsWith('?')) path = `/${path}`;
  return { scheme: m[1]!.toLowerCase() as 'http' | 'https', authority: m[2]!, path };
}

function at(s: SourceLocation): string {
  return s.line > 0 ? `${s.file}:${s.line}:${s.column}` : s.file;
}

function describeMatch(rc: RouteConfig): string {
  const m = rc.match;
  const parts: string[] = [];
  if (m.hosts.length > 0) parts.push(`host ${m.hosts.join(' | ')}`);
  if (m.exact_path !== undefined) parts.push(`path = ${m.exact_path}`);
  else if (m.path_regex !== undefined) parts.push(`path ~ /${m.path_regex}/`);
  else if (m.path !== undefined) parts.push(`path ${m.path}`);
  if (m.methods) parts.push(`method ${m.methods.join(' | ')}`);
  for (const [kind, list] of [['header', m.headers], ['query', m.query], ['cookie', m.cookies]] as const) {
    for (const c of list ?? []) parts.push(`${kind} ${c.name}${c.exact !== undefined ? ` = ${JSON.stringify(c.exact)}` : c.regex !== undefined ? ` ~ /${c.regex}/` : c.present === false ? ' absent' : ' present'}`);
  }
  if (m.client_ip) parts.push(`client_ip ${m.client_ip.join(' | ')}`);
  return parts.length === 0 ? 'everything' : parts.join(', ');
}

/** The banner's path: a prefix as written, "= /x" for an exact path, "~ regex" for a regex (as nginx's location). */
export function pathSummary(rc: RouteConfig): string {
  const m = rc.match;
  if (m.exact_path !== undefined) return ` = ${m.exact_path}`;
  if (m.path_regex !== undefined) return ` ~ ${m.path_regex}`;
  return m.path ?? '/';
}

/** The banner's "→ ..." for routes with a split or a redirect. */
export function actionSummary(rc: RouteConfig): string {
  if (rc.split !== undefined) return `→ split ${rc.split.map((s) => `${s.upstream} ${s.weight}`).join(' / ')}`;
  if (rc.redirect !== undefined) return `→ redirect ${rc.redirect.status} ${rc.redirect.to ?? 'to https'}`;
  return '→ ?';
}

function ref(rc: RouteConfig): RouteRef {
  return { name: rc.name, at: at(rc.source), priority: rc.priority ?? 0, match: describeMatch(rc) };
}

export function explainRequest(
  runtime: Runtime,
  method: string,
  url: string,
  target: { scheme: 'http' | 'https'; authority: string; path: string },
  rawHeaders: string[],
  clientIp: string,
): Explanation {
  const hostValue = rawHeaders.find((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'host') ?? target.authority;
  const q = target.path.indexOf('?');
  const rawPath = q < 0 ? target.path : target.path.slice(0, q);
  const query = q < 0 ? '' : target.path.slice(q + 1);
  const path = normalisePath(rawPath, runtime.config.routing.encoded_slashes === 'keep');
  const [host, port] = splitHost(hostValue);
  const e: Explanation = {
    request: { method, url, host, path: rawPath, normalised_path: path ?? null, query, client_ip: clientIp },
    outcome: 'no_route',
    not_matched: [],
    not_matched_omitted: 0,
    also_matched: [],
    other_hosts: 0,
    filters: [],
    phases: {},
  };
  if (!validHost(hostValue)) {
    e.outcome = 'bad_request';
    e.status = 400;
    return e;
  }
  if (path === undefined) {
    e.outcome = 'unsafe_path';
    e.status = 400;
    return e;
  }
  const access = accessLines(runtime, rawHeaders, clientIp);
  if (access.lines.length > 0) e.access = access.lines;
  // Routing sees the client after proxy.trusted_proxies, as a served request does (exchange.ts).
  const rr = new RouteRequest(host, port, path, query, method, rawHeaders, access.client, target.scheme);
  const router = runtime.router as HostPathRouter<CompiledRoute>;
  const ex = explainRoute(router.candidates, rr);
  // Every route that got as far as its other conditions is listed. Of those that failed on the
  // path (with thousands of routes, most of them): when a route won, those near this path (same
  // first segment, or exact/regex); when none did, the first PATH_LIMIT. The rest are counted.
  const first = rr.matchPath.slice(0, rr.matchPath.indexOf('/', 1) < 0 ? rr.matchPath.length : rr.matchPath.indexOf('/', 1));
  let onPath = 0;
  for (const t of ex.tried) {
    const m = t.candidate.config.match;
    const near = m.path === undefined || m.path === first || m.path.startsWith(`${first}/`);
    const shown = !t.onPath || (ex.winner !== undefined ? near && ++onPath <= PATH_LIMIT : ++onPath <= PATH_LIMIT);
    if (shown) e.not_matched.push({ ...ref(t.candidate.config), why: t.why });
    else e.not_matched_omitted++;
  }
  e.other_hosts = ex.otherHosts;
  e.also_matched = ex.alsoMatched.map((c) => ref(c.config));
  if (ex.winner === undefined) {
    e.status = 404;
    return e;
  }
  const route = ex.winner.route;
  e.route = ref(route.config);
  // The route's compiled chain, run for real on an explain context (hooks send nothing).
  e.filters = route.filters.map((f) => f.name);
  e.phases = phaseLines(route.phases);
  const ra = route.filters.find((f): f is RouteAccess => f instanceof RouteAccess);
  if (ra !== undefined) {
    const d = ra.list.decide(access.client);
    (e.access ??= []).push({ scope: `route ${route.name}`, client: access.client, decision: d.allow ? 'allow' : 'deny', rule: d.rule, effect: d.allow ? 'request goes on' : '403 access_denied' });
  }
  const ctx = new ExplainContext(method, target.path, target.scheme, rawHeaders, clientIp, rr, route, access.client);
  const cache = route.filters.find((f): f is Cache => f instanceof Cache);
  if (cache !== undefined) e.cache = cache.explainRequest(ctx);
  if (route.respond !== undefined) {
    e.outcome = 'respond';
    e.status = route.respond.status;
    return e;
  }
  for (const f of route.phases.request) {
    const reply = f.request!(ctx);
    if (reply === undefined || reply === null || reply instanceof Promise) continue;
    return answered(e, f.name, reply as LocalResponse);
  }
  e.outcome = 'proxy';
  let cluster: Cluster | undefined = route.cluster;
  let chosenBy = 'the route';
  const split = route.config.split;
  if (split !== undefined) {
    cluster = undefined;
    for (const f of route.phases.upstreamPeer) cluster ??= f.upstreamPeer!(ctx);
    const weights = split.map((s) => `${s.upstream} ${s.weight}`).join(' / ');
    const k = route.config.sticky_key;
    const key = k === undefined ? undefined : k.kind === 'client_ip' ? access.client : k.kind === 'cookie' ? rr.cookie(k.name) : rr.header(k.name);
    chosenBy = cluster !== undefined ? `split ${weights}, sticky key ${JSON.stringify(key)}` : `split ${weights}, by weight per request (no sticky key in this request)`;
  }
  const headers: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() !== 'host') headers.push(rawHeaders[i]!.toLowerCase(), rawHeaders[i + 1]!);
  headers.push('host', hostValue);
  const head = { method, target: rr.uri, headers };
  for (const f of route.phases.upstreamRequest) void f.upstreamRequest!(ctx, head);
  const upstreamTarget = head.target;
  if (cluster !== undefined && cluster.hostMode !== 'preserve' && cluster.endpoints.length === 1) {
    const hi = headers.findIndex((h, i) => i % 2 === 0 && h === 'host');
    if (hi >= 0) headers[hi + 1] = cluster.hostFor(cluster.endpoints[0]!)!;
  }
  const pairs: [string, string][] = [];
  for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i]!, headers[i + 1]!]);
  e.upstream_request = { method, target: upstreamTarget, headers: pairs };
  if (cluster !== undefined) {
    const servers = cluster.endpoints.map((s) => s.id);
    e.upstream = {
      name: cluster.name,
      chosen_by: chosenBy,
      servers,
      server: servers.length === 1 ? servers[0]! : null,
    };
  } else {
    e.upstream = { name: (split ?? []).map((s) => s.upstream).join(' or '), chosen_by: chosenBy, servers: [], server: null };
  }
  if (route.config.mirror !== undefined) e.mirror = { upstream: route.config.mirror.upstream, percent: route.config.mirror.percent };
  return e;
}

/**
 * The client address after proxy.trusted_proxies (from --client-ip and -H X-Forwarded-For), and
 * the decision of every listener's access list: at accept on the peer, or per request on the
 * forwarded address when the peer is a trusted proxy (filters/access/index.ts).
 */
function accessLines(runtime: Runtime, rawHeaders: readonly string[], peer: string): { client: string; lines: AccessLine[] } {
  const trusted = runtime.forward.trusted;
  const viaProxy = trusted !== null && trusted.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4');
  const xff = rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'x-forwarded-for').join(', ');
  const client = viaProxy && xff !== '' ? realClientIp(xff, peer, trusted) : peer;
  const lines: AccessLine[] = [];
  for (const l of runtime.config.listeners) {
    if (l.access === undefined) continue;
    const d = new AccessList(l.access).decide(client);
    const effect = viaProxy ? (d.allow ? 'per request (the peer is a trusted proxy)' : 'per request: 403 access_denied (the peer is a trusted proxy)') : d.allow ? 'at accept' : 'at accept: the connection is closed';
    lines.push({ scope: `listener ${l.address}`, client, decision: d.allow ? 'allow' : 'deny', rule: d.rule, effect });
  }
  return { client, lines };
}

const PHASE_NAMES: [keyof PhaseArrays, string][] = [
  ['request', 'request'],
  ['requestBody', 'request_body'],
  ['upstreamPeer', 'upstream_peer'],
  ['upstreamRequest', 'upstream_request'],
  ['responseInspect', 'response_inspect'],
  ['upstreamResponse', 'upstream_response'],
  ['response', 'response'],
  ['responseBody', 'response_body'],
  ['done', 'done'],
];

function phaseLines(p: PhaseArrays): Partial<Record<string, string[]>> {
  const out: Partial<Record<string, string[]>> = {};
  for (const [key, name] of PHASE_NAMES) if (p[key].length > 0) out[name] = p[key].map((f) => f.explain?.() ?? f.name);
  return out;
}

/** A request-phase filter answered: a redirect (3xx with Location) or another local reply. */
function answered(e: Explanation, filter: string, reply: LocalResponse): Explanation {
  e.answered_by = filter;
  e.status = reply.status;
  const h = reply.headers ?? [];
  const li = h.findIndex((x, i) => i % 2 === 0 && x.toLowerCase() === 'location');
  if (reply.status >= 300 && reply.status < 400 && li >= 0) {
    e.outcome = 'redirect';
    e.location = h[li + 1]!;
  } else {
    e.outcome = 'local_reply';
  }
  return e;
}

function text(e: Explanation): string {
  const out: string[] = [];
  const r = e.request;
  out.push(`request: ${r.method} ${r.url}`);
  out.push(`  host ${r.host || '(none)'}, path ${r.normalised_path ?? r.path}${r.normalised_path !== null && r.normalised_path !== r.path ? ` (normalised from ${r.path})` : ''}${r.query ? `, query ${r.query}` : ''}, client ${r.client_ip}`);
  if (e.outcome === 'unsafe_path') {
    out.push(`400 unsafe_path: the path ${JSON.stringify(r.path)} cannot be normalised safely (encoded "/" or "\\", control character or bad percent-encoding)`);
    return `${out.join('\n')}\n`;
  }
  if (e.outcome === 'bad_request') {
    out.push('400 bad_request: the Host is not a host name or IP address with an optional port');
    return `${out.join('\n')}\n`;
  }
  if (e.route !== undefined) out.push(`route: ${e.route.name} (${e.route.at})${e.route.priority !== 0 ? `, priority ${e.route.priority}` : ''}`, `  match: ${e.route.match}`);
  else out.push('no route matches: 404 no_route');
  if (e.not_matched.length > 0) {
    out.push(e.route !== undefined ? 'tried first, did not match:' : 'routes for this host, none matched:');
    for (const n of e.not_matched) out.push(`  - ${n.name} (${n.at}${n.priority !== 0 ? `, priority ${n.priority}` : ''}): ${n.why}`);
  }
  if (e.not_matched_omitted > 0) out.push(`  (${e.not_matched_omitted} route${e.not_matched_omitted === 1 ? '' : 's'} for other paths tried first, not listed)`);
  if (e.also_matched.length > 0) {
    out.push('also matched, but lost to the route above:');
    for (const n of e.also_matched) out.push(`  - ${n.name} (${n.at}${n.priority !== 0 ? `, priority ${n.priority}` : ''}): ${n.match}`);
  }
  if (e.other_hosts > 0) out.push(`  (${e.other_hosts} route${e.other_hosts === 1 ? '' : 's'} for other hosts not considered)`);
  for (const a of e.access ?? []) out.push(`access: ${a.scope}: client ${a.client} ${a.decision === 'allow' ? 'allowed' : 'denied'} by "${a.rule}", ${a.effect}`);
  if (e.route === undefined) return `${out.join('\n')}\n`;
  out.push(`filters: ${e.filters.length > 0 ? e.filters.join(', ') : '(none)'}`);
  for (const [phase, lines] of Object.entries(e.phases)) out.push(`  ${phase}: ${lines!.join(', ')}`);
  if (e.cache !== undefined) {
    const c = e.cache;
    out.push(`cache: store ${c.store} (${c.type}), key ${c.key}${c.secondary !== null ? ` + ${c.secondary}` : ''}`, `  ${c.why}`);
  }
  if (e.outcome === 'respond') out.push(`responds: ${e.status} (respond)`);
  if (e.outcome === 'redirect') out.push(`redirects: ${e.status} to ${e.location}`);
  if (e.outcome === 'local_reply') out.push(`answered by ${e.answered_by}: ${e.status}`);
  if (e.upstream_request !== undefined) {
    out.push('upstream request:', `  ${e.upstream_request.method} ${e.upstream_request.target}`);
    for (const [k, v] of e.upstream_request.headers) out.push(`  ${k}: ${v}`);
    out.push('  (plus X-Forwarded-For/-Proto/-Host, X-Real-IP, Forwarded, Via and the request id)');
  }
  if (e.upstream !== undefined) {
    const u = e.upstream;
    out.push(`upstream: ${u.name} (${u.chosen_by})`);
    if (u.server !== null) out.push(`  server: ${u.server}`);
    else if (u.servers.length > 0) out.push(`  server: one of ${u.servers.join(', ')}, picked per request by the balancer`);
  }
  if (e.mirror !== undefined) out.push(`mirror: ${e.mirror.percent}% to ${e.mirror.upstream} (response discarded)`);
  return `${out.join('\n')}\n`;
}
