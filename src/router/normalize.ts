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
// percent-encoding, or a path that does not start with "/".

const HEX = '0123456789ABCDEF';

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
    if (c === 37 /* % */ || c === 92 /* \ */ || c < 32 || c === 127) return false;
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
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 92 || c < 32 || c === 127) return undefined;
    if (c !== 37) {
      decoded += path[i];
      continue;
    }
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const byte = hi * 16 + lo;
    if ((!keepEncodedSlashes && (byte === 0x2f || byte === 0x5c)) || byte < 32 || byte === 127) return undefined;
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[hi]}${HEX[lo]}`;
    i += 2;
  }
  // 2. Merge slashes and remove dot segments (RFC 3986 §5.2.4, on segments).
  const out: string[] = [];
  const segments = decoded.split('/');
  const trailing = segments.length > 1 && (segments[segments.length - 1] === '' || segments[segments.length - 1] === '.' || segments[segments.length - 1] === '..');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  const joined = `/${out.join('/')}`;
  return trailing && out.length > 0 ? `${joined}/` : joined;
}
