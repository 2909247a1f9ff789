// The client's own conditionals against a stored response (RFC 9110 §13.1.2, §13.1.3, and
// RFC 9111 §4.3.2: a cache answers them for the responses it may send), and the head of the
// 304 it answers with (RFC 9110 §15.4.5).
import { httpDate } from './freshness.js';
import type { StoredResponse } from './store.js';

/** Weak comparison (RFC 9110 §8.8.3.2): equal opaque tags, W/ or not. */
function weakMatch(list: string, etag: string): boolean {
  const tag = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const part of list.split(',')) {
    let p = part.trim();
    if (p === '*') return true;
    if (p.startsWith('W/')) p = p.slice(2);
    if (p === tag) return true;
  }
  return false;
}

/** Whether a GET/HEAD with these conditionals gets a 304 for `r`. */
export function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, r: StoredResponse): boolean {
  if (r.status !== 200) return false;
  if (ifNoneMatch !== undefined) return r.etag !== undefined && weakMatch(ifNoneMatch, r.etag);
  if (ifModifiedSince === undefined) return false;
  const since = httpDate(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  // §13.1.3: the stored Last-Modified; without one, the Date the origin sent (RFC 9111 §4.3.2).
  const modified = httpDate(r.lastModified ?? r.date);
  return !Number.isNaN(modified) && modified <= since;
}

/** RFC 9110 §15.4.5: the fields a 304 carries (those that guide cache updates). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']);

export function notModifiedHeaders(r: StoredResponse): string[] {
  const out: string[] = [];
  const h = r.headers;
  for (let i = 0; i < h.length; i += 2) if (NOT_MODIFIED_FIELDS.has(h[i]!.toLowerCase())) out.push(h[i]!, h[i + 1]!);
  return out;
}
