// Header processing on Node's flat rawHeaders array ([name, value, name, value, ...]), the shape
// a proxy sees before it builds any object: a case-insensitive lookup and the removal of
// hop-by-hop headers (RFC 9110 §7.6.1), including those listed in Connection.
// Pure functions written here as a baseline; usher's own header code gets its cases beside them.

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Value of the first header called `name` (lower case), or undefined. */
export function findHeader(raw, name) {
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i];
    if (key.length === name.length && key.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

/** A new raw array without hop-by-hop headers and without those that Connection names. */
export function stripHopByHop(raw) {
  const connection = findHeader(raw, 'connection');
  const named = connection ? connection.toLowerCase().split(',').map((s) => s.trim()) : null;
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(key) || (named !== null && named.includes(key))) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

// A browser's GET as Node's parser hands it over (shared with usher.js).
export const BROWSER_GET = [
  'Host', 'example.com',
  'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language', 'en-GB,en;q=0.5',
  'Accept-Encoding', 'gzip, deflate, br, zstd',
  'Connection', 'keep-alive, X-Debug',
  'X-Debug', '1',
  'Cookie', 'session=4f1c2d3e; theme=dark',
  'Upgrade-Insecure-Requests', '1',
  'Sec-Fetch-Dest', 'document',
  'Sec-Fetch-Mode', 'navigate',
  'Priority', 'u=0, i',
];

export const cases = [
  { name: 'headers: find Host (first of 12)', fn: () => findHeader(BROWSER_GET, 'host'), iterations: 5_000_000 },
  { name: 'headers: find absent header (scan 12)', fn: () => findHeader(BROWSER_GET, 'x-request-id'), iterations: 2_000_000 },
  { name: 'headers: strip hop-by-hop (12 → 10)', fn: () => stripHopByHop(BROWSER_GET), iterations: 500_000 },
];
