// Range requests answered from a stored whole response (RFC 9110 §14): one byte range gets a
// 206 with Content-Range, an unsatisfiable one a 416 with "bytes */length"; several ranges, a
// unit other than bytes, or a malformed header get the whole 200 (a server may ignore Range,
// §14.2). If-Range (§13.1.5) sends the whole response unless its validator matches strongly.
import { httpDate } from './freshness.js';

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const FULL: RangeResult = Object.freeze({ kind: 'full' });
const UNSATISFIABLE: RangeResult = Object.freeze({ kind: 'unsatisfiable' });

export function byteRange(value: string, length: number): RangeResult {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (m === null) return FULL; // several ranges, another unit or garbage: the whole response
  const [, a, b] = m;
  if (a === '' && b === '') return FULL;
  if (a === '') {
    // A suffix: the last N bytes.
    const n = Number(b);
    if (n === 0 || length === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, length - n), end: length - 1 };
  }
  const start = Number(a);
  if (start >= length) return UNSATISFIABLE;
  const end = b === '' ? length - 1 : Math.min(Number(b), length - 1);
  if (end < start) return FULL; // an invalid range-spec: ignored (§14.1.1)
  return { kind: 'partial', start, end };
}

/** §13.1.5: If-Range holds when its entity-tag matches strongly, or its date equals Last-Modified (a strong validator). */
export function ifRangeHolds(ifRange: string | undefined, etag: string | undefined, lastModified: string | undefined): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return etag !== undefined && !etag.startsWith('W/') && v === etag;
  if (lastModified === undefined) return false;
  const d = httpDate(v);
  return !Number.isNaN(d) && d === httpDate(lastModified);
}
