// The local replies of the auth filters: usher's error form (text or JSON, with the request id
// and the reason code) plus the challenge field of the scheme.
import type { ReasonCode } from '../../errors/index.js';
import type { LocalResponse, RequestContext } from '../../pipeline/types.js';
import { localReplyFor, wantsJson } from '../../proxy/local-reply.js';

export function challenge(ctx: RequestContext, reason: ReasonCode, wwwAuthenticate: string | undefined): LocalResponse {
  const r = localReplyFor(reason, ctx.requestId, wantsJson(ctx.headers));
  return { ...r, headers: wwwAuthenticate === undefined ? r.headers : [...r.headers, 'www-authenticate', wwwAuthenticate], reason };
}

/**
 * The credentials of an Authorization field of `scheme` (lower case): the rest of the field,
 * trimmed; `null` when the field uses another scheme (or there is none); `''` when the scheme is
 * there with nothing after it.
 */
export function credentialsOf(field: string | undefined, scheme: string): string | null {
  if (field === undefined) return null;
  const f = field.trimStart();
  const n = scheme.length;
  if (f.length < n || f.slice(0, n).toLowerCase() !== scheme) return null;
  if (f.length === n) return '';
  const sep = f.charCodeAt(n);
  if (sep !== 32 && sep !== 9) return null; // "Basicx": another scheme
  return f.slice(n + 1).trim();
}
