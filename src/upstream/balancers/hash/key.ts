// What the hash balancer hashes on, compiled once per upstream from `hash.key`, and read from the
// plain request data the proxy stage hands over (no HTTP server types here).

export type HashKeySpec =
  | { readonly kind: 'client_ip' }
  | { readonly kind: 'path' }
  | { readonly kind: 'header' | 'cookie' | 'query'; readonly name: string };

/** "client_ip", "path", "header:X-User", "cookie:session", "query:user" (checked by the config). */
export function parseHashKey(text: string): HashKeySpec {
  if (text === 'client_ip' || text === 'path') return { kind: text };
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if (kind !== 'header' && kind !== 'cookie' && kind !== 'query') throw new Error(`unchecked hash key ${text}`);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/**
 * The key for one request, or undefined when the request lacks it (the balancer then spreads
 * such requests by weight). `rawHeaders` is node's flat [name, value, ...] list.
 */
export function hashKeyOf(spec: HashKeySpec, rawHeaders: readonly string[], path: string, clientIp: string): string | undefined {
  switch (spec.kind) {
    case 'client_ip':
      return clientIp;
    case 'path': {
      const q = path.indexOf('?');
      return q < 0 ? path : path.slice(0, q);
    }
    case 'header':
      for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === spec.name) return rawHeaders[i + 1];
      return undefined;
    case 'cookie':
      return cookieValue(rawHeaders, spec.name);
    case 'query':
      return queryValue(path, spec.name);
  }
}

/** The value of cookie `name` (RFC 6265 §5.4 Cookie header: "a=1; b=2"), first occurrence. */
export function cookieValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 6 || rawHeaders[i]!.toLowerCase() !== 'cookie') continue;
    const pairs = rawHeaders[i + 1]!.split(';');
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const value = new URLSearchParams(path.slice(q + 1)).get(name);
  return value ?? undefined;
}
