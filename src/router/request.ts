// What routing (matchers, splits, placeholders) sees of one request. Headers, cookies and query
// parameters are looked up lazily: a route without such matchers costs nothing for them.
import { isIP } from 'node:net';
import { matchingPath, normalisePath } from './normalize.js';

export class RouteRequest {
  /** Lower case, port removed ("" when there is no Host). */
  readonly host: string;
  /** The port from Host, "" when none. */
  readonly port: string;
  /** The normalised path, without the query: what the upstream gets (before rewrites). */
  readonly path: string;
  /**
   * The path routes match on: `path` without ";params" in its segments ("/admin;x/y" is
   * "/admin/y"), the way Tomcat, Jetty and Spring read it, so that such a server cannot be
   * reached at "/admin" past a rule for "/admin". The same string as `path` when it has no ";".
   */
  readonly matchPath: string;
  /** The raw query, without "?" ("" when none). */
  readonly query: string;
  readonly method: string;
  /** Flat name/value pairs as received. */
  readonly rawHeaders: readonly string[];
  readonly clientIp: string;
  readonly scheme: 'http' | 'https';
  private cookies: Map<string, string> | undefined = undefined;
  private params: Map<string, string> | undefined = undefined;

  constructor(host: string, port: string, path: string, query: string, method: string, rawHeaders: readonly string[], clientIp: string, scheme: 'http' | 'https') {
    this.host = host;
    this.port = port;
    this.path = path;
    this.matchPath = matchingPath(path);
    this.query = query;
    this.method = method;
    this.rawHeaders = rawHeaders;
    this.clientIp = clientIp;
    this.scheme = scheme;
  }

  /** A header by lower-case name; repeated fields are joined with ", " (RFC 9110 §5.3). */
  header(name: string): string | undefined {
    const h = this.rawHeaders;
    let value: string | undefined;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n.length === name.length && n.toLowerCase() === name) value = value === undefined ? h[i + 1]! : `${value}, ${h[i + 1]!}`;
    }
    return value;
  }

  /** A cookie by name (RFC 6265 §5.4: "name=value" pairs separated by ";"); the first wins. */
  cookie(name: string): string | undefined {
    if (this.cookies === undefined) {
      this.cookies = new Map();
      const h = this.rawHeaders;
      for (let i = 0; i < h.length; i += 2) {
        if (h[i]!.length !== 6 || h[i]!.toLowerCase() !== 'cookie') continue;
        for (const pair of h[i + 1]!.split(';')) {
          const eq = pair.indexOf('=');
          if (eq < 0) continue;
          const k = pair.slice(0, eq).trim();
          let v = pair.slice(eq + 1).trim();
          if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
          if (k !== '' && !this.cookies.has(k)) this.cookies.set(k, v);
        }
      }
    }
    return this.cookies.get(name);
  }

  /** A query parameter by name, raw (not percent-decoded); the first wins; "a" alone is "". */
  queryParam(name: string): string | undefined {
    if (this.params === undefined) {
      this.params = new Map();
      if (this.query !== '') {
        for (const pair of this.query.split('&')) {
          const eq = pair.indexOf('=');
          const k = eq < 0 ? pair : pair.slice(0, eq);
          if (k !== '' && !this.params.has(k)) this.params.set(k, eq < 0 ? '' : pair.slice(eq + 1));
        }
      }
    }
    return this.params.get(name);
  }

  /** Path and query as they go upstream (before rewrites). */
  get uri(): string {
    return this.query === '' ? this.path : `${this.path}?${this.query}`;
  }
}

/**
 * Whether a Host value (or an absolute-form authority) is `host [":" port]` as RFC 9110 §7.2 and
 * RFC 3986 §3.2 spell it: a name of letters, digits, "-", "_" and "." (not starting with a dot,
 * no empty label; one trailing dot is allowed), or a bracketed IPv6 address; a port of digits.
 * Anything else ("a@b", "a/b", "a..b", "a%2e", "a:b:c", "[::1") is refused with a 400 before
 * routing: usher would route it to a catch-all while an upstream that reads it differently
 * (as userinfo, a path, another name) could land it on a host a rule should have caught.
 */
export function validHost(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  let i = 0;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    if (close < 0 || isIP(value.slice(1, close)) !== 6) return false;
    i = close + 1;
  } else {
    let prev = 46; // a name may not start with "."
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (c === 46) {
        if (prev === 46) return false;
      } else if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95)) return false;
      prev = c;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 58 || n - i - 1 > 5) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Host header value → [host lower case without port, port]. IPv6 brackets are kept and the
 * address written in its one canonical form (RFC 5952: "[0:0::1]" is "[::1]"), an IPv4 address
 * in dotted decimal ("127.1" is "127.0.0.1"), a port without
 * leading zeros ("080" is "80"), so a host rule cannot be bypassed by another spelling.
 */
export function splitHost(hostHeader: string | undefined): [string, string] {
  if (!hostHeader) return ['', ''];
  let end = hostHeader.length;
  let v6 = false;
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    const close = hostHeader.indexOf(']');
    end = close < 0 ? end : close + 1;
    v6 = close >= 0;
  } else {
    const colon = hostHeader.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  // "example.com." is the same name as "example.com" (RFC 1034 §3.1): a rule for one must hold for both.
  const dot = end > 1 && hostHeader.charCodeAt(end - 1) === 46 ? 1 : 0;
  const host = end - dot === hostHeader.length ? hostHeader : hostHeader.slice(0, end - dot);
  let port = end < hostHeader.length && hostHeader.charCodeAt(end) === 58 ? hostHeader.slice(end + 1) : '';
  if (port.length > 1 && port.charCodeAt(0) === 48 && /^[0-9]+$/.test(port)) port = String(Number(port));
  if (v6) return [canonicalIPv6(host), port];
  let name = host;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      name = host.toLowerCase();
      break;
    }
  }
  // A name whose last label is a number is an IPv4 address (WHATWG URL): "127.1", "0x7f.1",
  // "2130706433" and "0177.0.0.1" are all 127.0.0.1 to an upstream that parses URLs.
  const last = name.charCodeAt(name.length - 1);
  if (((last >= 48 && last <= 57) || name.lastIndexOf('.0x') >= 0 || name.startsWith('0x')) && !DOTTED_QUAD.test(name)) name = canonicalIPv4(name);
  return [name, port];
}

const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function canonicalIPv4(name: string): string {
  try {
    return new URL(`http://${name}/`).hostname;
  } catch {
    return name; // not an address ("1.2.3.4.5"): compared as written
  }
}

function canonicalIPv6(bracketed: string): string {
  try {
    return new URL(`http://${bracketed}/`).hostname;
  } catch {
    return bracketed.toLowerCase();
  }
}

/**
 * The RouteRequest for a request target (origin-form, or "*"): what routing and the filters'
 * placeholders see (RequestContext.request). Undefined when the path cannot be normalised safely (→ 400).
 */
export function routeRequestFor(
  req: { readonly method?: string | undefined; readonly rawHeaders: string[]; readonly socket: object },
  hostHeader: string | undefined,
  target: string,
  clientIp: string,
  keepEncodedSlashes = false,
): RouteRequest | undefined {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const path = rawPath === '*' ? rawPath : normalisePath(rawPath, keepEncodedSlashes);
  if (path === undefined) return undefined;
  const [host, port] = splitHost(hostHeader);
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  return new RouteRequest(host, port, path, q < 0 ? '' : target.slice(q + 1), req.method ?? 'GET', req.rawHeaders, clientIp, scheme);
}
