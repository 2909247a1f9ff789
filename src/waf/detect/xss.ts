// XSS detection by reading the input as an HTML5 tokenizer would (WHATWG HTML §13.2.5, the
// tokenization states), in each place a value can land in a page: as text, and as the rest of an
// attribute value that is unquoted, single-, double- or back-quoted. The input is an attack when
// that reading yields markup that runs script: a tag that loads or runs code (script, iframe,
// object, svg, ...), an event-handler attribute (on...=), a style attribute, a URL attribute
// whose value is a javascript:/vbscript:/data: URL, or markup only old or odd parsers act on
// (<!doctype, <?xml, <!--[if ...). Written here from the HTML standard and the known vectors; no
// code or data of libinjection's is used (README.md in this folder has the rules and why).
//
// No allocation: names are compared in place, character by character, without case.

const enum Ctx {
  Data = 0,
  Unquoted = 1,
  Single = 0x27,
  Double = 0x22,
  Back = 0x60,
}

/** Tags that load or run code, or change how what follows is parsed, matched whole. */
const TAGS = ['script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'style', 'link', 'meta', 'base', 'isindex', 'xss', 'import', 'vmlframe'];
/** Tag name prefixes: SVG and XML/XSL islands run script in ways HTML's rules do not cover. */
const TAG_PREFIXES = ['svg', 'xml', 'xsl'];
/** Attributes whose value is a URL the browser loads or navigates to. */
const URL_ATTRS = ['href', 'src', 'action', 'formaction', 'background', 'data', 'lowsrc', 'dynsrc', 'poster', 'codebase', 'xlink:href', 'srcdoc', 'folder', 'xmlns'];
/** URL schemes that run script (data: can carry an HTML document with script; Netscape's livescript: is long gone). */
const SCHEMES = ['javascript:', 'vbscript:', 'data:'];

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
const isAlpha = (c: number): boolean => (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;

/** True when s[start, end) is `word` (lower case), without case. */
function is(s: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (lower(s.charCodeAt(start + i)) !== word.charCodeAt(i)) return false;
  return true;
}

function startsWith(s: string, start: number, end: number, word: string): boolean {
  if (end - start < word.length) return false;
  for (let i = 0; i < word.length; i++) if (lower(s.charCodeAt(start + i)) !== word.charCodeAt(i)) return false;
  return true;
}

function anyIs(s: string, start: number, end: number, list: readonly string[]): boolean {
  for (const w of list) if (is(s, start, end, w)) return true;
  return false;
}

function dangerousTag(s: string, start: number, end: number): boolean {
  if (anyIs(s, start, end, TAGS)) return true;
  for (const p of TAG_PREFIXES) if (startsWith(s, start, end, p)) return true;
  return false;
}

/**
 * True when the URL s[start, end) has a scheme that runs script. A browser ignores leading
 * spaces and control characters and tabs or newlines inside the scheme, and decodes character
 * references in attribute values: so does this ("jav&#x09;ascript:" is javascript:).
 */
function scriptUrl(s: string, start: number, end: number): boolean {
  outer: for (const scheme of SCHEMES) {
    let i = start;
    while (i < end && s.charCodeAt(i) <= 0x20) i++;
    for (let k = 0; k < scheme.length; ) {
      if (i >= end) continue outer;
      let c = s.charCodeAt(i);
      let next = i + 1;
      if (c === 0x26 && i + 2 < end && s.charCodeAt(i + 1) === 0x23) {
        // &#58; &#x3a; (the ; is optional)
        let j = i + 2;
        let hex = false;
        if ((s.charCodeAt(j) | 0x20) === 0x78) {
          hex = true;
          j++;
        }
        let v = 0;
        const digits = j;
        while (j < end) {
          const d = s.charCodeAt(j);
          const dv = d >= 0x30 && d <= 0x39 ? d - 0x30 : hex && (d | 0x20) >= 0x61 && (d | 0x20) <= 0x66 ? (d | 0x20) - 0x57 : -1;
          if (dv < 0 || v > 0x10ffff) break;
          v = v * (hex ? 16 : 10) + dv;
          j++;
        }
        if (j > digits) {
          c = v;
          next = j < end && s.charCodeAt(j) === 0x3b ? j + 1 : j;
        }
      } else if (c === 0x26) {
        // The named references that hide a scheme: &colon; &Tab; &NewLine;
        const named = namedReference(s, i, end);
        if (named !== 0) {
          c = named >> 8;
          next = i + (named & 0xff);
        }
      }
      i = next;
      if (k === 0 && c <= 0x20) continue; // leading spaces and controls, also as references (&#14;)
      if (c === 0x09 || c === 0x0a || c === 0x0d) continue; // dropped inside a URL scheme
      if (lower(c) !== scheme.charCodeAt(k)) continue outer;
      k++;
    }
    return true;
  }
  return false;
}

/** (code << 8 | length) of &colon; &tab; &newline; at s[i] (without case), else 0. */
function namedReference(s: string, i: number, end: number): number {
  if (startsWith(s, i, end, '&colon;')) return (0x3a << 8) | 7;
  if (startsWith(s, i, end, '&tab;')) return (0x09 << 8) | 5;
  if (startsWith(s, i, end, '&newline;')) return (0x0a << 8) | 9;
  return 0;
}

/** Scans a comment, a doctype or a bogus comment (<!x>, <?xml) from s[i] (just after "<"). */
function markupDeclaration(s: string, i: number): { end: number; evil: boolean } {
  const n = s.length;
  if (s.startsWith('!--', i)) {
    const close = s.indexOf('-->', i + 3);
    const end = close < 0 ? n : close + 3;
    // A conditional comment (<!--[if IE]>) is markup to old IE; so is a backtick, which old IE
    // took for a quote. Anything else in a comment is inert to an HTML5 parser (a tag included).
    // Searched within the comment only, so that many comments cost linear time.
    let evil = s.startsWith('[if', i + 3);
    for (let j = i + 3; j < end && !evil; j++) if (s.charCodeAt(j) === 0x60) evil = true;
    return { end, evil };
  }
  // <!doctype switches the parser's mode, <?xml starts an XML island; other <!...> (CDATA
  // included) are bogus comments to an HTML5 parser: inert.
  const close = s.indexOf('>', i);
  const evil = s.charCodeAt(i) === 0x3f || startsWith(s, i + 1, n, 'doctype');
  return { end: close < 0 ? n : close + 1, evil };
}

/** True when reading `s` in context `ctx` yields markup that runs script. */
function scan(s: string, ctx: Ctx): boolean {
  const n = s.length;
  let i = 0;
  let inTag = false;
  if (ctx !== Ctx.Data) {
    // The input continues an attribute value: that value ends at its quote (or, unquoted, at
    // a space or ">"), and attribute names follow inside the tag.
    if (ctx === Ctx.Unquoted) {
      while (i < n && !isSpace(s.charCodeAt(i)) && s.charCodeAt(i) !== 0x3e) i++;
    } else {
      const q = s.indexOf(String.fromCharCode(ctx), 0);
      if (q < 0) return false;
      i = q + 1;
    }
    inTag = true;
  }
  while (i < n) {
    if (!inTag) {
      const lt = s.indexOf('<', i);
      if (lt < 0) return false;
      i = lt + 1;
      if (i >= n) return false;
      const c = s.charCodeAt(i);
      if (c === 0x21 || c === 0x3f) {
        const d = markupDeclaration(s, i);
        if (d.evil) return true;
        i = d.end;
        continue;
      }
      if (c === 0x2f) {
        // An end tag: its attributes mean nothing to a browser.
        const gt = s.indexOf('>', i);
        if (gt < 0) return false;
        i = gt + 1;
        continue;
      }
      if (!isAlpha(c)) continue; // "a < b", "<3": text
      const start = i;
      while (i < n && !isSpace(s.charCodeAt(i)) && s.charCodeAt(i) !== 0x2f && s.charCodeAt(i) !== 0x3e) i++;
      if (dangerousTag(s, start, i)) return true;
      inTag = true;
      continue;
    }
    // Inside a tag: attributes until ">".
    const c = s.charCodeAt(i);
    if (isSpace(c) || c === 0x2f) {
      i++;
      continue;
    }
    if (c === 0x3e) {
      inTag = false;
      i++;
      continue;
    }
    const nameStart = i;
    i++; // the first character may be "=" (HTML5 §13.2.5.32)
    while (i < n) {
      const d = s.charCodeAt(i);
      if (isSpace(d) || d === 0x2f || d === 0x3e || d === 0x3d) break;
      i++;
    }
    const nameEnd = i;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    if (i >= n || s.charCodeAt(i) !== 0x3d) continue; // no value: harmless
    i++;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    let valueStart = i;
    let valueEnd: number;
    const q = i < n ? s.charCodeAt(i) : 0;
    if (q === 0x22 || q === 0x27 || q === 0x60) {
      valueStart = i + 1;
      const close = s.indexOf(String.fromCharCode(q), valueStart);
      valueEnd = close < 0 ? n : close;
      i = close < 0 ? n : close + 1;
    } else {
      while (i < n && !isSpace(s.charCodeAt(i)) && s.charCodeAt(i) !== 0x3e) i++;
      valueEnd = i;
    }
    if (attributeRunsScript(s, nameStart, nameEnd, valueStart, valueEnd)) return true;
  }
  return false;
}

function attributeRunsScript(s: string, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): boolean {
  // on...= with a name of three or more letters after "on": an event handler (onload,
  // onerror, and whatever event a browser adds next).
  if (nameEnd - nameStart >= 5 && lower(s.charCodeAt(nameStart)) === 0x6f && lower(s.charCodeAt(nameStart + 1)) === 0x6e) return true;
  // style: CSS can load URLs and, in old browsers, run expression().
  if (is(s, nameStart, nameEnd, 'style')) return true;
  return anyIs(s, nameStart, nameEnd, URL_ATTRS) && scriptUrl(s, valueStart, valueEnd);
}

/** True when `input` is cross-site scripting in one of the five contexts a value lands in. */
export function detectXss(input: string): boolean {
  // Markup needs "<"; an attribute after a broken-out value needs "=".
  const lt = input.indexOf('<') >= 0;
  if (!lt && input.indexOf('=') < 0) return false;
  if (lt && scan(input, Ctx.Data)) return true;
  if (scan(input, Ctx.Unquoted)) return true;
  if (input.indexOf("'") >= 0 && scan(input, Ctx.Single)) return true;
  if (input.indexOf('"') >= 0 && scan(input, Ctx.Double)) return true;
  return input.indexOf('`') >= 0 && scan(input, Ctx.Back);
}
