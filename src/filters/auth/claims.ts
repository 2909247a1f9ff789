// The verified claims of a request's JWT, for the filters after auth (rate-limit keys). No
// request types beyond the state key, so any filter may import it without a cycle.
import { stateKey } from '../../pipeline/types.js';

export type Claims = Readonly<Record<string, unknown>>;

/** Set by the jwt filter once the token verified. */
export const JWT_CLAIMS = stateKey<Claims>('auth.jwt.claims');

/** A claim as a header value or a key part: text as is, lists joined with ", ", objects as JSON. */
export function claimText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ');
  return JSON.stringify(v);
}
