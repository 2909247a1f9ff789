// Cache-Control (RFC 9111 §5.2) parsed once into the directives a shared cache acts on. A
// directive's argument may be a token or a quoted-string (§5.2); a delta-seconds that is not a
// number makes the directive invalid (NaN), which the freshness rules read as "stale" (§4.2.1:
// a cache may treat a response with conflicting or invalid values as stale).

export interface Directives {
  /** max-age / s-maxage: seconds, NaN when invalid or given twice with different values. */
  maxAge: number | undefined;
  sMaxage: number | undefined;
  noStore: boolean;
  /** no-cache (qualified or not: a qualified one is taken as unqualified, which is conservative). */
  noCache: boolean;
  /** private (qualified or not: a shared cache stores neither). */
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  mustUnderstand: boolean;
  /** Request: max-stale without a value is Infinity. */
  maxStale: number | undefined;
  minFresh: number | undefined;
  onlyIfCached: boolean;
  staleWhileRevalidate: number | undefined;
  staleIfError: number | undefined;
}

const EMPTY: Directives = Object.freeze({
  maxAge: undefined,
  sMaxage: undefined,
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  mustUnderstand: false,
  maxStale: undefined,
  minFresh: undefined,
  onlyIfCached: false,
  staleWhileRevalidate: undefined,
  staleIfError: undefined,
});

export const NO_DIRECTIVES: Readonly<Directives> = EMPTY;

/** RFC 9111 §1.2.2: a delta-seconds over 2^31 counts as 2^31; anything but digits is invalid. */
function deltaSeconds(v: string | undefined): number {
  if (v === undefined || !/^[0-9]+$/.test(v)) return NaN;
  const n = Number(v);
  return n > 2147483648 ? 2147483648 : n;
}

/** Two values of one directive that disagree make it invalid (NaN). */
function once(prev: number | undefined, next: number): number {
  if (prev === undefined) return next;
  return prev === next ? prev : NaN;
}

/** Splits on commas outside quoted-strings. */
function elements(value: string): string[] {
  if (!value.includes('"')) return value.split(',');
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) quoted = !quoted;
    else if (c === 0x5c && quoted) i++;
    else if (c === 0x2c && !quoted) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

export function parseCacheControl(value: string | undefined): Readonly<Directives> {
  if (value === undefined || value === '') return EMPTY;
  const d: Directives = { ...EMPTY };
  for (const element of elements(value)) {
    const eq = element.indexOf('=');
    const name = (eq < 0 ? element : element.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    let arg = eq < 0 ? undefined : element.slice(eq + 1).trim();
    if (arg !== undefined && arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"')) arg = arg.slice(1, -1);
    switch (name) {
      case 'max-age':
        d.maxAge = once(d.maxAge, deltaSeconds(arg));
        break;
      case 's-maxage':
        d.sMaxage = once(d.sMaxage, deltaSeconds(arg));
        break;
      case 'no-store':
        d.noStore = true;
        break;
      case 'no-cache':
        d.noCache = true;
        break;
      case 'private':
        d.private = true;
        break;
      case 'public':
        d.public = true;
        break;
      case 'must-revalidate':
        d.mustRevalidate = true;
        break;
      case 'proxy-revalidate':
        d.proxyRevalidate = true;
        break;
      case 'must-understand':
        d.mustUnderstand = true;
        break;
      case 'max-stale':
        d.maxStale = arg === undefined ? Infinity : deltaSeconds(arg);
        break;
      case 'min-fresh':
        d.minFresh = deltaSeconds(arg);
        break;
      case 'only-if-cached':
        d.onlyIfCached = true;
        break;
      case 'stale-while-revalidate':
        d.staleWhileRevalidate = deltaSeconds(arg);
        break;
      case 'stale-if-error':
        d.staleIfError = deltaSeconds(arg);
        break;
      default:
        break; // unknown extensions are ignored (§5.2.3)
    }
  }
  return d;
}
