// Targeted cache-control fields (RFC 9213): CDN-Cache-Control and an operator's own (say
// Usher-Cache-Control) are Dictionary Structured Fields (RFC 8941 §3.2) whose members are cache
// directives. A field that is empty or does not parse is ignored (§2.1: as if absent), so this
// parses strictly — lower-case keys, the bare item types, parameters (ignored, §2.1) — and turns
// a valid one into Cache-Control syntax for parseCacheControl. Inner lists are not directive
// values: a field with one is taken as not parsing. A value of the wrong type (max-age=1.5)
// makes that directive invalid, as Cache-Control's parser treats it (§2.1: SHOULD NOT consume).

const KEY = /^[a-z*][a-z0-9_.*-]*/;
const TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~:/A-Za-z0-9]*/;
const NUMBER = /^-?[0-9]{1,15}(\.[0-9]{1,3})?/;
const BYTES = /^:[A-Za-z0-9+/=]*:/;
const INTEGER_DIRECTIVES = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error']);

/** Cache-Control syntax for a valid, non-empty targeted field value, else undefined. */
export function targetedControl(value: string): string | undefined {
  let s = value.replace(/^[ \t]+|[ \t]+$/g, '');
  if (s === '') return undefined;
  const out: string[] = [];
  for (;;) {
    const key = KEY.exec(s);
    if (key === null) return undefined;
    s = s.slice(key[0].length);
    let item: string | true | false = true;
    if (s.startsWith('=')) {
      const r = bareItem(s.slice(1));
      if (r === undefined) return undefined;
      item = r.item;
      s = r.rest;
    }
    // Parameters: parsed (a malformed one is an error), then ignored.
    while (s.startsWith(';')) {
      s = s.slice(1).replace(/^ +/, '');
      const p = KEY.exec(s);
      if (p === null) return undefined;
      s = s.slice(p[0].length);
      if (s.startsWith('=')) {
        const r = bareItem(s.slice(1));
        if (r === undefined) return undefined;
        s = r.rest;
      }
    }
    // An Integer directive given a String ("10000") is of the wrong type, not the number inside it.
    if (typeof item === 'string' && item.startsWith('"') && INTEGER_DIRECTIVES.has(key[0])) item = 'invalid';
    if (item !== false) out.push(item === true ? key[0] : `${key[0]}=${item}`);
    s = s.replace(/^[ \t]+/, '');
    if (s === '') break;
    if (!s.startsWith(',')) return undefined;
    s = s.slice(1).replace(/^[ \t]+/, '');
    if (s === '') return undefined; // a trailing comma
  }
  // Every member false (?0): nothing to go on, as an empty field.
  return out.length === 0 ? undefined : out.join(', ');
}

/** A bare item (RFC 8941 §3.3) as Cache-Control would write its value (true/false for booleans). */
function bareItem(s: string): { item: string | boolean; rest: string } | undefined {
  if (s.startsWith('"')) {
    let i = 1;
    let text = '';
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\') {
        const n = s[++i];
        if (n !== '"' && n !== '\\') return undefined;
        text += n;
      } else if (c === '"') break;
      else if (c < ' ' || c > '~') return undefined;
      else text += c;
    }
    if (i >= s.length) return undefined;
    return { item: `"${text.replace(/(["\\])/g, '\\$1')}"`, rest: s.slice(i + 1) };
  }
  if (s.startsWith('?')) {
    if (s[1] === '1') return { item: true, rest: s.slice(2) };
    if (s[1] === '0') return { item: false, rest: s.slice(2) };
    return undefined;
  }
  for (const re of [NUMBER, TOKEN, BYTES]) {
    const m = re.exec(s);
    if (m !== null) return { item: m[0], rest: s.slice(m[0].length) };
  }
  return undefined;
}
