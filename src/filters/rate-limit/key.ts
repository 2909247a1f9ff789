// Reading a rate-limit key from a request: one reader per kind (key-kinds.ts), combined into
// one function per policy at load.
import type { RequestContext } from '../../pipeline/types.js';
import type { KeyPart } from './key-kinds.js';
import { claimText, JWT_CLAIMS } from '../auth/claims.js';

type Reader = (ctx: RequestContext) => string;

const READERS: Readonly<Record<KeyPart['kind'], (part: KeyPart) => Reader>> = Object.freeze({
  client_ip: () => (ctx) => ctx.clientIp,
  route: () => (ctx) => ctx.route?.name ?? '',
  header: (p) => {
    const n = (p as { name: string }).name;
    return (ctx) => ctx.header(n) ?? '';
  },
  cookie: (p) => {
    const n = (p as { name: string }).name;
    return (ctx) => ctx.request?.cookie(n) ?? '';
  },
  // The route's JWT filter runs before its rate limits and leaves the verified claims here; a
  // request that reaches a policy without them (none verified) is keyed on the empty value.
  jwt_claim: (p) => {
    const n = (p as { name: string }).name;
    return (ctx) => claimText(ctx.get(JWT_CLAIMS)?.[n]) ?? '';
  },
});

/** One function for the whole key. Parts are joined with NUL, which no header, cookie or address holds. */
export function compileKey(parts: readonly KeyPart[]): Reader {
  const readers = parts.map((p) => READERS[p.kind](p));
  if (readers.length === 1) return readers[0]!;
  return (ctx) => {
    let out = readers[0]!(ctx);
    for (let i = 1; i < readers.length; i++) out += '\0' + readers[i]!(ctx);
    return out;
  };
}
