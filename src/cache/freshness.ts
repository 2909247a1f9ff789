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
    // §3: any final status may be stored with explicit freshness (only must-understand asks the
    // cache to know it); a partial response or a 304 is never stored as a whole response.
    if (f.status < 200 || f.status === 206 || f.status === 304) return 'status';
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

const MONTHS: Readonly<Record<string, number>> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '([0-9]{2}):([0-9]{2}):([0-9]{2})';
// Names compared without case (senders get it wrong: "AUG", "gMT"); everything else exactly.
const IMF_FIXDATE = new RegExp(`^${DAY}, ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME} GMT$`, 'i');
const RFC850_DATE = new RegExp(`^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME} GMT$`, 'i');
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([0-9 ][0-9]) ${TIME} ([0-9]{4})$`, 'i');

/**
 * An HTTP-date in seconds, NaN when invalid: only the three forms of RFC 9110 §5.6.7
 * (IMF-fixdate, RFC 850, asctime), so that "UTC", a missing comma, extra spaces, dashes in an
 * IMF-fixdate or a 1-digit hour make an invalid date (for Expires: already expired, RFC 9111
 * §5.3), not whatever Date.parse would guess.
 */
export function httpDate(value: string | undefined): number {
  if (value === undefined) return NaN;
  // Groups: IMF-fixdate and RFC 850 day, month, year, time (4-6); asctime month, day, time (3-5), year.
  let m = IMF_FIXDATE.exec(value) ?? RFC850_DATE.exec(value);
  let asctime = false;
  if (m === null) {
    m = ASCTIME_DATE.exec(value);
    if (m === null) return NaN;
    asctime = true;
  }
  const time = asctime ? 3 : 4;
  const day = asctime ? m[2]! : m[1]!;
  const month = asctime ? m[1]! : m[2]!;
  let year = Number(asctime ? m[6] : m[3]);
  if (!asctime && m[3]!.length === 2) {
    // RFC 850 (§5.6.7): a two-digit year more than 50 years in the future is the most recent past year with those digits.
    const now = new Date().getUTCFullYear();
    year += Math.floor(now / 100) * 100;
    if (year > now + 50) year -= 100;
  }
  const d = Number(day.trim());
  const h = Number(m[time]), mi = Number(m[time + 1]), sec = Number(m[time + 2]);
  if (d < 1 || h > 23 || mi > 59 || sec > 60) return NaN;
  const ms = Date.UTC(year, MONTHS[month.toLowerCase()]!, d, h, mi, Math.min(sec, 59));
  // 31 Feb and the like roll over into the next month: invalid.
  if (new Date(ms).getUTCDate() !== d) return NaN;
  return Math.floor(ms / 1000);
}

/** Age: a non-negative integer (RFC 9111 §5.1); anything else counts as absent. */
export function ageValue(value: string | undefined): number {
  if (value === undefined) return 0;
  // Age is a singleton: of a list ("7200, 0", or two field lines joined) the first member counts.
  const comma = value.indexOf(',');
  const v = (comma < 0 ? value : value.slice(0, comma)).trim();
  if (!/^[0-9]+$/.test(v)) return 0;
  return Math.min(Number(v), 2147483648);
}
