// Parsers for the string forms in the config that the schema can only check loosely:
// listener addresses, upstream server URLs and trusted proxy ranges. Each returns either the
// parsed value or a message (what was expected, what was found) and an optional hint.
import { BlockList, isIP } from 'node:net';
import { describeValue } from './units.js';

export type Parsed<T> = ({ ok: true } & T) | { ok: false; message: string; hint?: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const EXPECT_ADDRESS = 'expected an address like "127.0.0.1:8080", "[::1]:8080", ":8080" or a port number';

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 interfaces), "8080" or 8080. */
export function parseListenAddress(input: string | number): Parsed<{ host: string; port: number }> {
  const bad = (hint?: string): Parsed<never> => ({ ok: false, message: `${EXPECT_ADDRESS}, got ${describeValue(input)}`, hint });
  const portOnly = (p: string): Parsed<{ host: string; port: number }> => {
    const port = parsePort(p);
    return port === undefined ? bad('the port must be a number from 0 to 65535') : { ok: true, host: '0.0.0.0', port };
  };

  if (typeof input === 'number') return portOnly(String(input));
  const s = input.trim();
  if (/^[0-9]+$/.test(s)) return portOnly(s);
  if (s.startsWith(':') && !s.startsWith('::')) return portOnly(s.slice(1));

  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1 || s[close + 1] !== ':') return bad('write an IPv6 address in brackets with a port: "[::1]:8080"');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (isIP(host) !== 6) return bad(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) return bad(`add a port: "${s}:8080"`);
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return bad(`write IPv6 addresses in brackets: "[${host}]:${portText}"`);
    if (host === '*') return bad(`for all interfaces write ":${portText}"`);
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) return bad(`${JSON.stringify(host)} is not an IP address or host name`);
  }
  const port = parsePort(portText);
  if (port === undefined) return bad('the port must be a number from 0 to 65535');
  return { ok: true, host: host.toLowerCase(), port };
}

/** An upstream server's URL: http(s), a host, optional port, nothing else. */
export function parseServerUrl(input: string): Parsed<{ origin: string; authority: string }> {
  const expected = 'expected a URL like "http://127.0.0.1:3001"';
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    const hint = input.includes('://') ? undefined : `add the scheme: "http://${input}"`;
    return { ok: false, message: `${expected}, got ${describeValue(input)}`, hint };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // new URL("localhost:3001") parses with scheme "localhost:"; that is a missing scheme.
    if (!input.includes('://')) return { ok: false, message: `${expected}, got ${describeValue(input)}`, hint: `add the scheme: "http://${input}"` };
    return { ok: false, message: `expected an http:// or https:// URL, got ${describeValue(input)}` };
  }
  if (url.hostname === '') return { ok: false, message: `${expected} (with a host), got ${describeValue(input)}` };
  if (url.username !== '' || url.password !== '') {
    return { ok: false, message: `expected a URL without user name or password, got ${describeValue(input)}` };
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || /[?#]/.test(input)) {
    return {
      ok: false,
      message: `expected a URL without a path, query or fragment, got ${describeValue(input)}`,
      hint: `usher forwards the client's path as is; write "${url.origin}"`,
    };
  }
  return { ok: true, origin: url.origin, authority: url.host };
}

/** "10.0.0.0/8", "::1/128", or a single address (→ "/32" or "/128"). */
export function parseTrustedProxy(input: string): Parsed<{ cidr: string }> {
  const bad: Parsed<never> = {
    ok: false,
    message: `expected an IP address or CIDR range like "10.0.0.0/8" or "::1/128", got ${describeValue(input)}`,
  };
  const slash = input.indexOf('/');
  const address = (slash === -1 ? input : input.slice(0, slash)).toLowerCase();
  const family = isIP(address);
  if (family === 0) return bad;
  const max = family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : input.slice(slash + 1);
  const prefix = /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) {
    return { ...bad, hint: `the prefix length after "/" must be 0..${max} for an IPv${family} address` };
  }
  try {
    // The same check the runtime will do when it builds its BlockList from this list.
    new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return bad;
  }
  return { ok: true, cidr: `${address}/${prefix}` };
}

/** The BlockList of normalised trusted-proxy entries (proxy.trusted_proxies), or null when there are none. */
export function trustedProxyList(cidrs: readonly string[]): BlockList | null {
  let trusted: BlockList | null = null;
  for (const entry of cidrs) {
    trusted ??= new BlockList();
    const [addr, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) trusted.addAddress(addr, family);
    else trusted.addSubnet(addr, Number(bits), family);
  }
  return trusted;
}
