// The path routing sees (issue #3): RFC 3986 §6.2.2 normalisation, so that "/%61dmin",
// "//admin", "/x/../admin" and "/./admin" cannot slip past a rule for "/admin".
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~, §2.3) are decoded, and the
//     hex digits of every other percent-encoding are upper-cased (§6.2.2.1);
//   - dot segments are removed (§5.2.4), also when written "%2e" (decoded first);
//   - repeated "/" are merged (nginx's merge_slashes).
// The same normalised path is sent upstream, so the upstream sees what usher routed on.
// A target is refused (undefined → 400 unsafe_path) when it cannot be normalised safely:
// an encoded "/" or "\" (%2F, %5C: a server that decodes it would see other segments), a raw
// "\" (some servers treat it as "/"), an encoded or raw NUL or other control character, a bad
// percent-encoding, or a path that does not start with "/"; and the spellings that only another
// parser downstream of usher would resolve:
//   - "#": a fragment is not part of a request target (RFC 9112 §3.2); an upstream that parses
//     the target as a URL drops it, so "/admin#x" would reach it as "/admin";
//   - a dot segment with parameters ("..;x", ".;"): Tomcat and Jetty remove ";params" and then
//     resolve "..", so "/public/..;/admin" would reach them as "/admin";
//   - a double encoding "%25XX" (decoded once here: "%252e" stays "%252e"): a server that decodes
//     twice would see "." — "/x/%252e%252e/admin" as "/admin", "/%2561dmin" as "/admin";
//   - bytes that are never valid UTF-8 (%C0, %C1, %F5–%FF) and the overlong forms %E0%80–%9F,
//     %F0%80–%8F (RFC 3629 §3): a lax decoder turns %C0%AE into "." and %C0%AF into "/".

const HEX = '0123456789ABCDEF';
const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;
/** "..;x", ".;" — a dot segment once a server strips the ";params". */
const DOT_PARAMS = /^\.\.?;/;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/** Whether `path` needs any work: most paths are already normal, and then nothing is allocated. */
function isNormal(path: string): boolean {
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 35 /* # */ || c === 59 /* ; */ || c < 32 || c === 127) return false;
    if (c === 47 /* / */ && prev === 47) return false;
    if (c === 46 /* . */ && prev === 47) {
      // "/." followed by "/", end, or ".": a dot segment.
      const n = i + 1 < path.length ? path.charCodeAt(i + 1) : 47;
      if (n === 47 || n === 46) return false;
    }
    prev = c;
  }
  return true;
}

/**
 * `path`: the target without its query. Returns the normalised path, or undefined if unsafe.
 * `keepEncodedSlashes` (routing.encoded_slashes: keep): %2F and %5C stay encoded, as ordinary
 * characters of their segment, instead of making the path unsafe.
 */
export function normalisePath(path: string, keepEncodedSlashes = false): string | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  if (isNormal(path)) return path;
  // 1. Percent-decoding of unreserved characters; refuse the dangerous encodings.
  let decoded = '';
  let prevByte = -1; // the previous percent-encoded byte, if the previous character was one
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 92 || c === 35 || c < 32 || c === 127) return undefined;
    if (c !== 37) {
      decoded += path[i];
      prevByte = -1;
      continue;
    }
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const byte = hi * 16 + lo;
    if ((!keepEncodedSlashes && (byte === 0x2f || byte === 0x5c)) || byte < 32 || byte === 127) return undefined;
    if (byte === 0xc0 || byte === 0xc1 || byte >= 0xf5 || (prevByte === 0xe0 && byte < 0xa0) || (prevByte === 0xf0 && byte < 0x90)) return undefined;
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[hi]}${HEX[lo]}`;
    prevByte = byte;
    i += 2;
  }
  if (decoded.includes('%25') && DOUBLE_ENCODED.test(decoded)) return undefined;
  // 2. Merge slashes and remove dot segments (RFC 3986 §5.2.4, on segments).
  const out: string[] = [];
  const segments = decoded.split('/');
  const trailing = segments.length > 1 && (segments[segments.length - 1] === '' || segments[segments.length - 1] === '.' || segments[segments.length - 1] === '..');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '' || s === '.') continue;
    if (s.charCodeAt(0) === 46 && DOT_PARAMS.test(s)) return undefined;
    if (s === '..') out.pop();
    else out.push(s);
  }
  const joined = `/${out.join('/')}`;
  return trailing && out.length > 0 ? `${joined}/` : joined;
}

/** "/a;x/b;y/" → "/a/b/"; a segment that is only ";x" goes away ("/;x/admin" → "/admin"). */
function withoutParams(path: string): string {
  let out = '';
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const semi = seg.indexOf(';');
    const bare = semi < 0 ? seg : seg.slice(0, semi);
    if (bare !== '') out += `/${bare}`;
  }
  return out === '' ? '/' : path.endsWith('/') ? `${out}/` : out;
}

/**
 * The path routes match on (RouteRequest.matchPath): a normalised path without the ";params"
 * of its segments, as Tomcat, Jetty and Spring read it ("/admin;jsessionid=1" is "/admin").
 */
export function matchingPath(path: string): string {
  return path.indexOf(';') < 0 ? path : withoutParams(path);
}
