// HTTP/2 request fields → the HTTP/1.1 field list the proxy stage works on (RFC 9113 §8.3.1).
// node has already refused connection-specific fields (Connection, Keep-Alive, Transfer-Encoding,
// Upgrade, TE other than "trailers": RFC 9113 §8.2.2) as malformed.

/**
 * Drops pseudo-headers, turns `:authority` into Host (it takes precedence over a Host field,
 * RFC 9113 §8.3.1), and joins Cookie fields with "; " (RFC 9113 §8.2.3) for HTTP/1.1 upstreams.
 * Returns null for a malformed request (RFC 9113 §8.3.1): an `:authority` with userinfo
 * ("user@host", which HTTP/1.1 absolute-form refuses too), or a Host naming another authority
 * than `:authority` (routing and upstreams must not see two different hosts).
 */
export function toHttp1Headers(raw: readonly string[]): string[] | null {
  const out: string[] = [];
  let authority: string | undefined;
  let host: string | undefined;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    else if (name === 'host') host ??= value;
    else out.push(name, value);
  }
  if (authority !== undefined) {
    if (authority.includes('@')) return null;
    if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) return null;
  }
  const h = authority ?? host;
  if (cookie !== undefined) out.unshift('cookie', cookie);
  if (h !== undefined) out.unshift('host', h);
  return out;
}
