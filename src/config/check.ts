// Checks the schema cannot express: references between sections, parsed addresses, duplicates.
// Runs even when the schema reported errors, so one run shows everything; it therefore reads
// the data defensively and skips whatever has the wrong shape (the schema already said so).
import { isIP } from 'node:net';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { parseListenAddress, parseTrustedProxy } from './address.js';
import { checkRouting, checkRoutingActions, hasRoutingAction } from './check-routing.js';
import { warnShadowedRoutes } from './check-shadow.js';
import type { Issues, Segment } from './issues.js';
import { didYouMean } from './suggest.js';
import { checkProtocols } from './check-protocols.js';
import { checkTls } from '../tls/config/check.js';
import { checkAccessSection } from '../filters/access/config.js';
import { checkCaches } from '../filters/cache/config.js';
import { checkWaf } from '../filters/waf/config.js';
import { checkTopCompress } from '../filters/compress/config.js';
import { checkSecurityHeadersSection } from '../filters/security-headers/config.js';
import { checkRateLimits } from '../filters/rate-limit/config.js';
import { checkUpstream } from '../upstream/config/check.js';
import { baseDirOf } from './normalize.js';
import { checkAdmin } from '../admin/config.js';
import { checkTracing } from '../observability/tracing/config.js';
import { checkAccessLogSettings } from '../observability/access-format.js';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Node rejects these characters in header values (ERR_INVALID_CHAR) at response time. */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Framing headers usher computes itself; a configured one would contradict the body. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding']);

export function checkSemantics(data: unknown, issues: Issues): void {
  if (!isRec(data)) return;
  // One message per spot: if the schema already complained here, say nothing more.
  const error: ErrorFn = (path, message, hint, at = 'value') => {
    if (!issues.hasErrorAt(path)) issues.error(path, message, { hint, at });
  };
  checkListeners(data.listeners, error);
  const upstreams = isRec(data.upstreams) ? data.upstreams : {};
  checkUpstreams(upstreams, issues, error);
  const used = checkRoutes(data.routes, Object.keys(upstreams), issues, error);
  for (const name of Object.keys(upstreams)) {
    if (!used.has(name)) issues.warning(['upstreams', name], `upstream "${name}" is not used by any route`, { at: 'key' });
  }
  checkProtocols(data, error);
  checkRateLimits(data, error);
  checkCaches(data, error);
  {
    const baseDir = baseDirOf(issues.file);
    checkWaf(data, error, (p) => (baseDir === undefined || isAbsolute(p) ? p : resolvePath(baseDir, p)));
  }
  checkAdmin(data, error);
  checkTracing(data, error);
  checkAccessLogSettings(data.log, error, (path, message) => issues.warning(path, message, { at: 'key' }));
  checkTls(data, issues, baseDirOf(issues.file));
  checkTopCompress(data.compress, error);
  if (isRec(data.proxy)) {
    list(data.proxy.trusted_proxies).forEach((entry, i) => {
      if (typeof entry !== 'string') return;
      const r = parseTrustedProxy(entry);
      if (!r.ok) error(['proxy', 'trusted_proxies', i], r.message, r.hint);
    });
  }
}

type ErrorFn = (path: Segment[], message: string, hint?: string, at?: 'key' | 'value') => void;

function checkListeners(listeners: unknown, error: ErrorFn): void {
  const seen: { host: string; port: number; index: number }[] = [];
  list(listeners).forEach((l, i) => {
    if (isRec(l)) checkAccessSection(l.access, ['listeners', i, 'access'], error);
    if (isRec(l)) checkSecurityHeadersSection(l.security_headers, ['listeners', i, 'security_headers'], error);
    if (!isRec(l) || (typeof l.address !== 'string' && typeof l.address !== 'number')) return;
    const path = ['listeners', i, 'address'];
    const r = parseListenAddress(l.address);
    if (!r.ok) return error(path, r.message, r.hint);
    // Port 0 asks the OS for a fresh port each time, so it never collides.
    const clash = r.port === 0 ? undefined : seen.find((s) => s.port === r.port && overlaps(s.host, r.host));
    if (clash) {
      const same = clash.host === r.host;
      error(
        path,
        `duplicate listener address ${JSON.stringify(String(l.address))}: listeners[${clash.index}] already listens on ${same ? 'it' : `${clash.host} port ${clash.port}`}`,
        same ? undefined : '"0.0.0.0" covers every IPv4 address and "::" every address, so both cannot bind the port',
      );
    }
    seen.push({ host: r.host, port: r.port, index: i });
  });
}

function overlaps(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  return (a === '0.0.0.0' && isIP(b) === 4) || (b === '0.0.0.0' && isIP(a) === 4);
}

function checkUpstreams(upstreams: Rec, issues: Issues, error: ErrorFn): void {
  for (const [name, up] of Object.entries(upstreams)) {
    if (isRec(up)) checkUpstream(name, up, issues, error);
  }
}

function checkRoutes(routes: unknown, upstreamNames: string[], issues: Issues, error: ErrorFn): Set<string> {
  const known = new Set(upstreamNames); // a lookup per route reference, not a scan of the names
  const used = new Set<string>();
  const names = new Map<string, number>();
  list(routes).forEach((route, i) => {
    if (!isRec(route)) return;
    const path: Segment[] = ['routes', i];
    const hasUpstream = route.upstream !== undefined;
    const hasRespond = route.respond !== undefined;
    if (hasRoutingAction(route)) checkRoutingActions(route, path, error);
    else if (hasUpstream && hasRespond) {
      error(path, 'a route takes exactly one of "upstream", "split", "respond" or "redirect", found "upstream" and "respond"', 'split it into several routes, or remove all but one');
    } else if (!hasUpstream && !hasRespond) {
      error(
        path,
        'a route takes exactly one of "upstream", "split", "respond" or "redirect", found none',
        'add "upstream: <name>" to proxy the request, "split:" to divide it between upstreams, "respond:" to answer it directly, or "redirect:" to send the client elsewhere',
      );
    }
    if (typeof route.upstream === 'string') {
      used.add(route.upstream);
      if (!known.has(route.upstream)) {
        const hint =
          didYouMean(route.upstream, upstreamNames) ??
          (upstreamNames.length === 0
            ? 'no upstreams are defined; add one under "upstreams:"'
            : `defined upstreams: ${upstreamNames.join(', ')}`);
        error([...path, 'upstream'], `no upstream named ${JSON.stringify(route.upstream)}`, hint);
      }
    }
    if (typeof route.name === 'string') {
      const first = names.get(route.name);
      if (first === undefined) names.set(route.name, i);
      else issues.warning([...path, 'name'], `duplicate route name ${JSON.stringify(route.name)} (same as routes[${first}])`);
    }
    if (isRec(route.respond)) checkRespond(route.respond, [...path, 'respond'], issues, error);
    checkRouting(route, path, upstreamNames, known, used, issues, error);
  });
  warnShadowedRoutes(routes, issues);
  return used;
}

function checkRespond(respond: Rec, path: Segment[], issues: Issues, error: ErrorFn): void {
  if (isRec(respond.headers)) {
    for (const [name, value] of Object.entries(respond.headers)) {
      if (FRAMING_HEADERS.has(name.toLowerCase())) {
        error([...path, 'headers', name], `header ${JSON.stringify(name)} cannot be set here: usher computes it from the body`, 'remove it', 'key');
      } else if (typeof value === 'string' && INVALID_HEADER_VALUE.test(value)) {
        error(
          [...path, 'headers', name],
          `expected a header value without control characters such as line breaks, got ${JSON.stringify(value)}`,
        );
      }
    }
  }
  const status = respond.status;
  if ((status === 204 || status === 304) && typeof respond.body === 'string' && respond.body !== '') {
    issues.warning([...path, 'body'], `a ${status} response has no body (RFC 9110 §15.3.5, §15.4.5); this body is never sent`);
  }
}
