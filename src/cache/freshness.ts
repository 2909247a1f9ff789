// What a shared cache may store (RFC 9111 §3), for how long it is fresh (§4.2.1, §4.2.2), and
// how old a stored response is (§4.2.3). Pure functions over parsed facts: table-tested.
import type { Directives } from './cache-control.js';

/** RFC 9110 §15.1: statuses cacheable by default (heuristic freshness applies). 206 is, but usher stores only whole responses. */
const HEURISTIC = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);

/**
 * The final statuses usher's cache understands (RFC 9111 §3: `must-understand` lets a cache
 * ignore no-store only for these). 206 (partial) and 304 are never stored as such.
 */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 451, 500, 501, 502, 503, 504]);

export function heuristicallyCacheable(status: number): boolean {
  return HEURISTIC.has(status);
}

export interface StoreFacts {
  readonly method: string;
  readonly status: number;
  readonly response: Readonly<Directives>;
  readonly request: Readonly<Directives>;
  /** The request carried Authorization (§3.5). */
  readonly authorization: boolean;
  /** The response has Expires (any value: an invalid one still makes it explicitly cacheable, as stale). */
  readonly hasExpires: boolean;
  /** Vary: * (§4.1: it never matches, so storing it is pointless). */
  readonly varyStar: boolean;
}

/** Why a response is not stored (undefined: it may be). */
export function notStorable(f: StoreFacts): string | undefined {
  if (f.method !== 'GET') return 'method';
  const r = f.response;
  if (r.mustUnderstand) {
    // §5.2.2.3: must-understand overrides no-store for a status the cache understands.
    if (!UNDERSTOOD.has(f.status)) return 'status not understood (must-understand)';
  } else {
    if (!UNDERSTOOD.has(f.status)) return 'status';
    if (r.noStore) return 'no-store';
  }
  if (f.request.noStore) return 'request no-store';
  if (r.private) return 'private';
  // §3.5: a response to a request with Authorization only with a directive that allows it.
  if (f.authorization && !r.public && r.sMaxage === undefined && !r.mustRevalidate) return 'authorization';
  if (f.varyStar) return 'vary *';
  // §3: explicit freshness, public, or a status cacheable by default.
  if (r.public || r.maxAge !== undefined || r.sMaxage !== undefined || f.hasExpires || heuristicallyCacheable(f.status)) return undefined;
  // no-cache with a validator still makes sense to store (it is revalidated on every use), but
  // without any freshness information such a response is simply not cacheable.
  return 'no explicit freshness and status not cacheable by default';
}

export interface FreshnessFacts {
  readonly status: number;
  readonly response: Readonly<Directives>;
  /** Seconds since the epoch, NaN when absent or invalid. */
  readonly date: number;
  readonly expires: number | undefined;
  readonly lastModified: number;
  /** heuristic freshness: this fraction of the time since Last-Modified, at most `heuristicMax` seconds. */
  readonly heuristicFraction: number;
  readonly heuristicMax: number;
}

/** §4.2.1: the freshness lifetime in seconds (0: stale at once). */
export function freshnessLifetime(f: FreshnessFacts, responseTime: number): number {
  const r = f.response;
  if (r.sMaxage !== undefined) return Number.isNaN(r.sMaxage) ? 0 : r.sMaxage;
  if (r.maxAge !== undefined) return Number.isNaN(r.maxAge) ? 0 : r.maxAge;
  if (f.expires !== undefined) {
    // An invalid Expires (e.g. "0") means already expired (§5.3).
    if (Number.isNaN(f.expires)) return 0;
    const date = Number.isNaN(f.date) ? responseTime : f.date;
    return Math.max(0, f.expires - date);
  }
  // §4.2.2: heuristic, only for statuses cacheable by default (or public), from Last-Modified.
  if (!Number.isNaN(f.lastModified) && (heuristicallyCacheable(f.status) || r.public)) {
    const date = Number.isNaN(f.date) ? responseTime : f.date;
    if (date > f.lastModified) return Math.min(f.heuristicMax, Math.floor((date - f.lastModified) * f.heuristicFraction));
  }
  return 0;
}

export interface AgeFacts {
  /** Seconds: when usher sent the request upstream, and received the response head. */
  readonly requestTime: number;
  readonly responseTime: number;
  readonly date: number;
  /** The upstream's Age (seconds), 0 when absent or invalid. */
  readonly age: number;
}

/** §4.2.3: corrected_initial_age, fixed once the response is received. */
export function initialAge(f: AgeFacts): number {
  const apparent = Number.isNaN(f.date) ? 0 : Math.max(0, f.responseTime - f.date);
  const responseDelay = Math.max(0, f.responseTime - f.requestTime);
  const correctedAge = f.age + responseDelay;
  return Math.max(apparent, correctedAge);
}

/** An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, RFC 850 and asctime) in seconds, NaN when invalid. */
export function httpDate(value: string | undefined): number {
  if (value === undefined) return NaN;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? NaN : Math.floor(ms / 1000);
}

/** Age: a non-negative integer (RFC 9111 §5.1); anything else counts as absent. */
export function ageValue(value: string | undefined): number {
  if (value === undefined) return 0;
  const v = value.trim();
  if (!/^[0-9]+$/.test(v)) return 0;
  return Math.min(Number(v), 2147483648);
}
