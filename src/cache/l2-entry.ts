// How a stored response travels to and from the shared L2 (l2.ts): one Redis string holding a
// small header, the response's metadata as JSON (status, fields, the Vary values and key parts
// it answers, and the times and directives freshness and Age are computed from) and the body's
// bytes as they are. Pure: unit-tested (test/unit/cache-l2-entry.test.ts).
//
//   "U2" (2 bytes) | version 1 (1 byte) | metadata length (uint32, big-endian) | metadata (UTF-8 JSON) | body
//
// Numbers that JSON cannot hold (a directive NaN when invalid, Infinity) travel as strings.
// Anything that does not decode (another version, a cut value, a foreign key under the prefix)
// is a miss, never an error.
import { NO_DIRECTIVES, type Directives } from './cache-control.js';
import { sizeOf, type StoredResponse } from './store.js';

const MAGIC0 = 0x55; // U
const MAGIC1 = 0x32; // 2
const VERSION = 1;
const HEAD = 7;

interface Meta {
  s: number;
  h: string[];
  vn: string[];
  vv: (string | null)[];
  k: string;
  rt: number;
  ia: number;
  lt: number;
  d: Record<string, boolean | number | string | null>;
  c: string | null;
  tg: boolean;
  t: string[];
  e: string | null;
  ue: string | null;
  lm: string | null;
  dt: string | null;
}

const NUMERIC = ['maxAge', 'sMaxage', 'maxStale', 'minFresh', 'staleWhileRevalidate', 'staleIfError'] as const;
const FLAGS = ['noStore', 'noCache', 'private', 'public', 'mustRevalidate', 'proxyRevalidate', 'mustUnderstand', 'onlyIfCached'] as const;

function encodeDirectives(d: Readonly<Directives>): Meta['d'] {
  const out: Meta['d'] = {};
  for (const f of FLAGS) if (d[f]) out[f] = true;
  for (const n of NUMERIC) {
    const v = d[n];
    if (v !== undefined) out[n] = Number.isFinite(v) ? v : String(v);
  }
  return out;
}

function decodeDirectives(d: unknown): Directives | undefined {
  if (typeof d !== 'object' || d === null) return undefined;
  const r = d as Record<string, unknown>;
  const out: Directives = { ...NO_DIRECTIVES };
  for (const f of FLAGS) out[f] = r[f] === true;
  for (const n of NUMERIC) {
    const v = r[n];
    if (v === undefined || v === null) continue;
    const x = typeof v === 'string' ? Number(v) : v;
    if (typeof x !== 'number') return undefined;
    out[n] = x;
  }
  return out;
}

/** The L2 value of `r` (its body in memory). */
export function encodeEntry(r: StoredResponse): Buffer {
  const meta: Meta = {
    s: r.status,
    h: r.headers,
    vn: [...r.varyNames],
    vv: r.varyValues.map((v) => v ?? null),
    k: r.secondary,
    rt: r.responseTime,
    ia: r.initialAge,
    lt: r.lifetime,
    d: encodeDirectives(r.directives),
    c: r.control ?? null,
    tg: r.targeted,
    t: [...r.tags],
    e: r.etag ?? null,
    ue: r.upstreamEtag ?? null,
    lm: r.lastModified ?? null,
    dt: r.date ?? null,
  };
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.allocUnsafe(HEAD + json.length + r.body.length);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  out.writeUInt32BE(json.length, 3);
  json.copy(out, HEAD);
  r.body.copy(out, HEAD + json.length);
  return out;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** The stored response an L2 value holds, or undefined when it is not one (wrong magic or version, cut, malformed). */
export function decodeEntry(buf: Buffer): StoredResponse | undefined {
  if (buf.length < HEAD || buf[0] !== MAGIC0 || buf[1] !== MAGIC1 || buf[2] !== VERSION) return undefined;
  const n = buf.readUInt32BE(3);
  if (HEAD + n > buf.length) return undefined;
  let m: Partial<Meta>;
  try {
    m = JSON.parse(buf.toString('utf8', HEAD, HEAD + n)) as Partial<Meta>;
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  if (!isNum(m.s) || !Array.isArray(m.h) || m.h.length % 2 !== 0 || !m.h.every(isStr)) return undefined;
  if (!Array.isArray(m.vn) || !m.vn.every(isStr) || !Array.isArray(m.vv) || m.vv.length !== m.vn.length || !m.vv.every(strOrNull)) return undefined;
  if (!isStr(m.k) || !isNum(m.rt) || !isNum(m.ia) || !isNum(m.lt) || typeof m.tg !== 'boolean' || !Array.isArray(m.t) || !m.t.every(isStr)) return undefined;
  if (!strOrNull(m.c) || !strOrNull(m.e) || !strOrNull(m.ue) || !strOrNull(m.lm) || !strOrNull(m.dt)) return undefined;
  const directives = decodeDirectives(m.d);
  if (directives === undefined) return undefined;
  // A copy: the value's buffer may be large or shared; the body is kept on its own.
  const body = Buffer.from(buf.subarray(HEAD + n));
  const r: StoredResponse = {
    status: m.s,
    headers: m.h,
    body,
    length: body.length,
    file: undefined,
    varyNames: m.vn,
    varyValues: m.vv.map((v) => v ?? undefined),
    secondary: m.k,
    responseTime: m.rt,
    initialAge: m.ia,
    lifetime: m.lt,
    directives,
    control: m.c ?? undefined,
    targeted: m.tg,
    tags: m.t,
    etag: m.e ?? undefined,
    upstreamEtag: m.ue ?? undefined,
    lastModified: m.lm ?? undefined,
    date: m.dt ?? undefined,
    size: 0,
  };
  r.size = sizeOf(r);
  return r;
}

/**
 * Seconds the L2 keeps `r`, `now` being the wall clock in seconds: what is left of its freshness
 * plus how long it may still serve stale (stale-while-revalidate, stale-if-error, the route's
 * stale_if_error) — and, with a validator, as long again, so a stale copy can still be
 * revalidated with a 304 instead of fetched whole. 0: not worth writing.
 */
export function l2Ttl(r: StoredResponse, now: number, staleIfError: number): number {
  const age = r.initialAge + Math.max(0, now - r.responseTime);
  const d = r.directives;
  const swr = d.staleWhileRevalidate !== undefined && Number.isFinite(d.staleWhileRevalidate) ? d.staleWhileRevalidate : 0;
  const sie = d.staleIfError !== undefined && Number.isFinite(d.staleIfError) ? d.staleIfError : 0;
  let ttl = r.lifetime - age + Math.max(swr, sie, staleIfError);
  if (r.upstreamEtag !== undefined || r.lastModified !== undefined) ttl += r.lifetime;
  return ttl <= 0 ? 0 : Math.ceil(ttl);
}
