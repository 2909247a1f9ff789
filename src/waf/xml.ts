// The XML request body processor (ctl:requestBodyProcessor=XML, or a text/xml, application/xml
// or application/soap+xml Content-Type as ModSecurity's recommended rule 200000 selects): a small
// bounded well-formedness parser of our own over the body's bytes (latin1), no library. What it
// yields is what ModSecurity v3 (libxml2) gives the two XPath expressions the CRS uses:
//   XML:/*    one value: the root element's text content (every descendant text and CDATA
//             section, entities decoded, concatenated: libxml2's xmlNodeGetContent);
//   XML://@*  one value per attribute in the document (its value, entities decoded).
// A document that is not well-formed (a tag left open or closed out of order, two roots, an
// undefined entity, `<` in an attribute value, a duplicate attribute, text outside the root,
// nesting deeper than `maxDepth`, more than `maxNodes` elements and attributes) is an error:
// REQBODY_ERROR 1 with "XML parsing error: ..." in REQBODY_ERROR_MSG, as in ModSecurity.
import { isUtf8 } from 'node:buffer';
import { ListBuilder } from './variables.js';

export interface XmlResult {
  readonly error: string | undefined;
  /** The XML collection: '/*' (root text) and '//@*' (each attribute value). */
  readonly xml: ListBuilder;
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const NAME_START = /[A-Za-z_:\u0080-\u00ff]/;
const NAME_CHAR = /[A-Za-z0-9_:.\u0080-\u00ff-]/;

class XmlError extends Error {}

/**
 * `body` is the document as bytes (latin1); `bytes`, when the caller has them, the same bytes as a
 * Buffer, which the UTF-8 check reads directly (without them it re-encodes the string: a copy).
 */
export function parseXml(body: string, limits: { maxDepth: number; maxNodes: number }, bytes?: Buffer): XmlResult {
  const xml = new ListBuilder();
  const attrs: string[] = [];
  let text = '';
  try {
    parse(body, limits, attrs, (t) => (text += t), bytes);
  } catch (err) {
    if (!(err instanceof XmlError)) throw err;
    return { error: `XML parsing error: ${err.message}`, xml };
  }
  xml.add('/*', text);
  for (const a of attrs) xml.add('//@*', a);
  return { error: undefined, xml };
}

function parse(s: string, limits: { maxDepth: number; maxNodes: number }, attrs: string[], onText: (t: string) => void, bytes: Buffer | undefined): void {
  const n = s.length;
  let i = 0;
  const fail = (what: string): never => {
    throw new XmlError(`${what} at byte ${i}`);
  };
  const stack: string[] = [];
  let rootSeen = false;
  let nodes = 0;
  let hasDtd = false;
  let externalDtd = false;
  // general entities the internal subset declares: their replacement text (external ones: '')
  const entities = new Map<string, string>();
  // a bound on what expanding them adds (the billion-laughs document), and on their nesting
  let expansion = 0;
  const maxExpansion = 10 * n + 65_536;
  const name = (): string => {
    const start = i;
    if (i >= n || !NAME_START.test(s[i] as string)) fail('a name expected');
    i++;
    while (i < n && NAME_CHAR.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  const skipSpace = (): boolean => {
    const start = i;
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === '\r' || s[i] === '\n')) i++;
    return i > start;
  };
  const entity = (): string => {
    // at '&'
    const end = s.indexOf(';', i + 1);
    if (end < 0 || end - i > 64) fail('an unterminated entity reference');
    const ref = s.slice(i + 1, end);
    i = end + 1;
    if (ref.startsWith('#')) {
      const code = /^#x[0-9a-fA-F]+$/.test(ref) ? parseInt(ref.slice(2), 16) : /^#[0-9]+$/.test(ref) ? parseInt(ref.slice(1), 10) : NaN;
      if (!Number.isFinite(code) || !xmlChar(code)) fail(`an invalid character reference &${ref};`);
      // as bytes (UTF-8), as libxml2 stores text
      return code < 0x80 ? String.fromCharCode(code) : Buffer.from(String.fromCodePoint(code), 'utf8').toString('latin1');
    }
    return named(ref, 0);
  };
  const named = (ref: string, depth: number): string => {
    const v = PREDEFINED[ref];
    if (v !== undefined) return v;
    if (!/^[A-Za-z_:][A-Za-z0-9_:.-]*$/.test(ref)) fail(`an invalid entity reference &${ref};`);
    const text = entities.get(ref);
    // declared in an external subset usher never reads: nothing (libxml2 only warns)
    if (text === undefined) return externalDtd ? '' : fail(`the entity '${ref}' is not defined`);
    if (depth >= 8) fail(`the entity '${ref}' nests too deep (or refers to itself)`);
    // libxml2 substitutes it (XML:/* holds the replacement text), references inside included
    const out = text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_:][A-Za-z0-9_:.-]*);/g, (_m, r: string) => {
      if (!r.startsWith('#')) return named(r, depth + 1);
      const code = r[1] === 'x' ? parseInt(r.slice(2), 16) : parseInt(r.slice(1), 10);
      if (!xmlChar(code)) fail(`an invalid character reference &${r};`);
      return code < 0x80 ? String.fromCharCode(code) : Buffer.from(String.fromCodePoint(code), 'utf8').toString('latin1');
    });
    expansion += out.length;
    if (expansion > maxExpansion) fail('entity expansion beyond 10 times the document');
    return out;
  };
  const declare = (subset: string): void => {
    for (const m of subset.matchAll(/<!ENTITY\s+(%\s+)?([^\s%"'>]+)\s+(?:"([^"]*)"|'([^']*)'|((?:SYSTEM|PUBLIC)\b[^>]*))\s*>/g)) {
      if (m[1] !== undefined) continue; // parameter entities: for the DTD only
      const name = m[2] as string;
      // the first declaration wins, as XML says
      if (!entities.has(name)) entities.set(name, m[5] !== undefined ? '' : (m[3] ?? m[4] ?? ''));
    }
  };
  const comment = (): void => {
    // at '<!--'; '--' may not occur inside (libxml2: "Double hyphen within comment")
    const end = s.indexOf('--', i + 4);
    if (end < 0) fail('an unterminated comment');
    if (s[end + 2] !== '>') fail("'--' within a comment");
    i = end + 3;
  };
  const misc = (where: 'prolog' | 'epilog'): boolean => {
    // comments, PIs, whitespace (and, in the prolog, the XML declaration and DOCTYPE)
    if (skipSpace()) return true;
    if (s.startsWith('<!--', i)) {
      comment();
      return true;
    }
    if (s.startsWith('<?', i)) {
      const end = s.indexOf('?>', i + 2);
      if (end < 0) fail('an unterminated processing instruction');
      const target = /^<\?([^\s?]*)/.exec(s.slice(i, i + 64))?.[1] ?? '';
      if (target.toLowerCase() === 'xml' && (where === 'epilog' || i > docStart)) fail('an XML declaration not at the start');
      i = end + 2;
      return true;
    }
    if (where === 'prolog' && s.startsWith('<!DOCTYPE', i)) {
      if (hasDtd || rootSeen) fail('a misplaced DOCTYPE');
      hasDtd = true;
      // to the '>' that closes it, past an internal subset in [...] and quoted strings; in the
      // subset, comments and processing instructions are skipped whole (a ']>', a quote or an
      // <!ENTITY in them declares nothing and ends nothing, as libxml2 reads them)
      let depth = 0;
      let q = '';
      let subsetStart = -1;
      let segment = -1;
      const subset: string[] = [];
      const start = i + 9;
      for (i = start; i < n; i++) {
        const c = s[i];
        if (q !== '') {
          if (c === q) q = '';
        } else if (depth > 0 && c === '<' && (s.startsWith('<!--', i) || s.startsWith('<?', i))) {
          subset.push(s.slice(segment, i));
          if (s[i + 1] === '!') comment();
          else {
            const end = s.indexOf('?>', i + 2);
            if (end < 0) fail('an unterminated processing instruction');
            i = end + 2;
          }
          segment = i;
          i--;
        } else if (c === '"' || c === "'") q = c;
        else if (c === '[') {
          if (depth++ === 0 && subsetStart < 0) subsetStart = segment = i + 1;
        } else if (c === ']') {
          if (--depth === 0 && subsetStart >= 0) {
            subset.push(s.slice(segment, i));
            declare(subset.join(''));
          }
        } else if (c === '>' && depth <= 0) break;
      }
      if (i >= n) fail('an unterminated DOCTYPE');
      externalDtd = /^\s+\S+\s+(?:SYSTEM|PUBLIC)\b/.test(s.slice(start, subsetStart < 0 ? i : subsetStart));
      i++;
      return true;
    }
    return false;
  };

  if (s.startsWith('\u00ef\u00bb\u00bf')) i = 3; // a UTF-8 byte order mark
  const docStart = i;
  // XML 1.0's characters: no C0 control but tab, LF, CR, anywhere (libxml2 refuses them)
  // eslint-disable-next-line no-control-regex
  const ctl = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.exec(s);
  if (ctl !== null) {
    i = ctl.index;
    fail('a control character');
  }
  // without an encoding declaration, or declaring UTF-8, the bytes must be UTF-8
  const declared = /^<\?xml\s[^?]*encoding\s*=\s*["']([^"']*)["']/.exec(s.slice(docStart, docStart + 200))?.[1];
  if ((declared === undefined || /^utf-?8$/i.test(declared)) && !isUtf8(bytes ?? Buffer.from(s, 'latin1'))) fail('the input is not proper UTF-8 (and declares no other encoding)');
  while (i < n && misc('prolog'));
  if (i >= n) fail('the document is empty');
  if (s[i] !== '<') fail('content before the root element');
  // the elements
  while (i < n) {
    if (stack.length === 0) {
      if (rootSeen) {
        if (misc('epilog')) continue;
        fail('extra content after the root element');
      }
    }
    const c = s[i];
    if (c === '<') {
      if (s.startsWith('</', i)) {
        i += 2;
        const nm = name();
        skipSpace();
        if (s[i] !== '>') fail('a malformed end tag');
        i++;
        const open = stack.pop();
        if (open !== nm) fail(open === undefined ? `the end tag </${nm}> without a start tag` : `the end tag </${nm}> does not match <${open}>`);
      } else if (s.startsWith('<!--', i)) {
        comment();
      } else if (s.startsWith('<![CDATA[', i)) {
        if (stack.length === 0) fail('a CDATA section outside the root element');
        const end = s.indexOf(']]>', i + 9);
        if (end < 0) fail('an unterminated CDATA section');
        onText(s.slice(i + 9, end));
        i = end + 3;
      } else if (s.startsWith('<?', i)) {
        const end = s.indexOf('?>', i + 2);
        if (end < 0) fail('an unterminated processing instruction');
        i = end + 2;
      } else if (s.startsWith('<!', i)) {
        fail('a markup declaration inside the document');
      } else {
        i++;
        const nm = name();
        if (++nodes > limits.maxNodes) fail(`more than ${limits.maxNodes} elements and attributes`);
        const seen = new Set<string>();
        for (;;) {
          const spaced = skipSpace();
          if (s.startsWith('/>', i)) {
            i += 2;
            break;
          }
          if (s[i] === '>') {
            i++;
            stack.push(nm);
            if (stack.length > limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`);
            break;
          }
          if (i >= n) fail(`the start tag <${nm}> is not closed`);
          if (!spaced) fail(`no space before an attribute of <${nm}>`);
          const an = name();
          if (seen.has(an)) fail(`the attribute ${an} is repeated in <${nm}>`);
          seen.add(an);
          if (++nodes > limits.maxNodes) fail(`more than ${limits.maxNodes} elements and attributes`);
          skipSpace();
          if (s[i] !== '=') fail(`the attribute ${an} has no value`);
          i++;
          skipSpace();
          const q = s[i];
          if (q !== '"' && q !== "'") fail(`the value of ${an} is not quoted`);
          i++;
          let v = '';
          for (;;) {
            if (i >= n) fail(`the value of ${an} is not closed`);
            const ch = s[i] as string;
            if (ch === q) break;
            if (ch === '<') fail(`'<' in the value of ${an}`);
            if (ch === '&') v += entity();
            else {
              // attribute-value normalisation: whitespace characters become spaces
              v += ch === '\t' || ch === '\n' || ch === '\r' ? ' ' : ch;
              i++;
            }
          }
          i++;
          attrs.push(v);
        }
        rootSeen = true;
      }
    } else if (stack.length === 0) {
      fail('text outside the root element');
    } else {
      // character data up to the next markup
      let t = '';
      while (i < n && s[i] !== '<') {
        if (s[i] === '&') t += entity();
        else {
          let j = i;
          while (j < n && s[j] !== '<' && s[j] !== '&') j++;
          const chunk = s.slice(i, j);
          if (chunk.includes(']]>')) fail("']]>' in text");
          t += chunk;
          i = j;
        }
      }
      onText(t);
    }
  }
  if (stack.length > 0) fail(`the element <${stack[stack.length - 1]}> is not closed`);
  if (!rootSeen) fail('no root element');
}

/** XML 1.0's Char production: what a character reference may name. */
function xmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}
