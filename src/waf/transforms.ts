// The t: transformations, on byte strings (one char a byte, latin1), as ModSecurity v3 defines
// them. Each returns its input unchanged (the same string) when there is nothing to do, so a
// chain over ordinary values allocates nothing; the engine memoises a chain's result per value
// within a request (transaction.ts).
import { createHash } from 'node:crypto';

export type Transform = (s: string) => string;

const HEX = /^[0-9a-fA-F]$/;
const isHex = (c: string | undefined): boolean => c !== undefined && HEX.test(c);
const isSpace = (code: number): boolean => code === 0x20 || (code >= 0x09 && code <= 0x0d);
const fromCode = String.fromCharCode;

export function lowercase(s: string): string {
  if (!/[A-Z]/.test(s)) return s;
  // ASCII only: ModSecurity lower-cases bytes in the C locale
  return /[\x80-\xff]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s.toLowerCase();
}

export function uppercase(s: string): string {
  if (!/[a-z]/.test(s)) return s;
  return /[\x80-\xff]/.test(s) ? s.replace(/[a-z]+/g, (m) => m.toUpperCase()) : s.toUpperCase();
}

export function urlDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '+') out += ' ';
    else if (c === '%' && isHex(s[i + 1]) && isHex(s[i + 2])) {
      out += fromCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out += c;
  }
  return out;
}

/** urlDecode plus IIS's %uHHHH: its low byte, full-width ASCII (U+FF01-FF5E) folded to ASCII. */
export function urlDecodeUni(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '+') out += ' ';
    else if (c === '%') {
      if ((s[i + 1] === 'u' || s[i + 1] === 'U') && isHex(s[i + 2]) && isHex(s[i + 3]) && isHex(s[i + 4]) && isHex(s[i + 5])) {
        let b = parseInt(s.slice(i + 4, i + 6), 16);
        if (b > 0 && b < 0x5f && (s[i + 2] === 'f' || s[i + 2] === 'F') && (s[i + 3] === 'f' || s[i + 3] === 'F')) b += 0x20;
        out += fromCode(b);
        i += 5;
      } else if (isHex(s[i + 1]) && isHex(s[i + 2])) {
        out += fromCode(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else out += c;
    } else out += c;
  }
  return out;
}

const ENTITIES: Record<string, string> = { quot: '"', amp: '&', lt: '<', gt: '>', nbsp: '\xa0' };

export function htmlEntityDecode(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|(quot|amp|lt|gt|nbsp);?)/gi, (m, hex?: string, dec?: string, name?: string) => {
    if (hex !== undefined) return fromCode(parseInt(hex.slice(-2), 16));
    if (dec !== undefined) return fromCode(Number(dec.length > 7 ? dec.slice(-7) : dec) & 0xff);
    return ENTITIES[(name ?? '').toLowerCase()] ?? m;
  });
}

export function jsDecode(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const d = s[i + 1] as string;
    if ((d === 'u' || d === 'U') && isHex(s[i + 2]) && isHex(s[i + 3]) && isHex(s[i + 4]) && isHex(s[i + 5])) {
      let b = parseInt(s.slice(i + 4, i + 6), 16);
      if (b > 0 && b < 0x5f && (s[i + 2] === 'f' || s[i + 2] === 'F') && (s[i + 3] === 'f' || s[i + 3] === 'F')) b += 0x20;
      out += fromCode(b);
      i += 5;
    } else if ((d === 'x' || d === 'X') && isHex(s[i + 2]) && isHex(s[i + 3])) {
      out += fromCode(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (d >= '0' && d <= '7') {
      let j = i + 1;
      let v = 0;
      while (j < s.length && j < i + 4 && (s[j] as string) >= '0' && (s[j] as string) <= '7') {
        const nv = v * 8 + Number(s[j]);
        if (nv > 0xff) break;
        v = nv;
        j++;
      }
      out += fromCode(v);
      i = j - 1;
    } else {
      const map: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
      out += map[d] ?? d;
      i += 1;
    }
  }
  return out;
}

export function cssDecode(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    if (i + 1 >= s.length) break; // a trailing backslash goes
    let j = i + 1;
    while (j < s.length && j < i + 7 && isHex(s[j])) j++;
    const digits = j - (i + 1);
    if (digits > 0) {
      const hex = s.slice(i + 1, j);
      let b = parseInt(hex.slice(-2), 16);
      // full-width ASCII: ff01-ff5e (also with leading zeros)
      if (digits >= 4 && b > 0 && b < 0x5f && /^0*ff..$/i.test(hex)) b += 0x20;
      out += fromCode(b);
      // one whitespace after the escape belongs to it
      if (j < s.length && isSpace(s.charCodeAt(j))) j++;
      i = j - 1;
    } else if (s[i + 1] === '\n') {
      i += 1;
    } else {
      out += s[i + 1];
      i += 1;
    }
  }
  return out;
}

/** What cmdLine changes: quotes, \\ and ^ go, separators become one space, A-Z lower-case. */
const CMDLINE_CHANGES = /["'\\^ ,;\t\r\nA-Z]/;

export function cmdLine(s: string): string {
  // '/' and '(' change the output only after a separator: without any of these it is `s`
  if (!CMDLINE_CHANGES.test(s)) return s;
  let out = '';
  let space = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    switch (c) {
      case '"':
      case "'":
      case '\\':
      case '^':
        break;
      case ' ':
      case ',':
      case ';':
      case '\t':
      case '\r':
      case '\n':
        if (!space) {
          out += ' ';
          space = true;
        }
        break;
      case '/':
      case '(':
        if (space) out = out.slice(0, -1);
        space = false;
        out += c;
        break;
      default:
        out += c >= 'A' && c <= 'Z' ? c.toLowerCase() : c;
        space = false;
    }
  }
  return out === s ? s : out;
}

export function compressWhitespace(s: string): string {
  if (!/[\t\n\v\f\r\xa0]| {2}/.test(s)) return s;
  return s.replace(/[\t\n\v\f\r \xa0]+/g, ' ');
}

export function removeWhitespace(s: string): string {
  if (!/[\t\n\v\f\r \xa0]/.test(s)) return s;
  return s.replace(/[\t\n\v\f\r \xa0]+/g, '');
}

export function removeNulls(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.replace(/\0+/g, '');
}

export function replaceNulls(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.replace(/\0/g, ' ');
}

/** C-style comments become one space; an unterminated one runs to the end. */
export function replaceComments(s: string): string {
  if (s.indexOf('/*') < 0 && s.indexOf('*/') < 0) return s;
  return s.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, ' ');
}

export function removeComments(s: string): string {
  if (!/\/\*|<!--|--|#/.test(s)) return s;
  return s.replace(/\/\*[\s\S]*?(?:\*\/|$)|<!--[\s\S]*?(?:-->|$)|--[\s\S]*$|#[\s\S]*$/g, '');
}

/** Removes ./ segments, resolves ../ and collapses // (the root cannot be left). */
export function normalizePath(s: string): string {
  if (!/\/\/|(^|\/)\.\.?(\/|$)/.test(s)) return s;
  const absolute = s.startsWith('/');
  const trailing = /(^|\/)\.\.?$|\/$/.test(s);
  const parts: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!absolute) parts.push('..');
      continue;
    }
    parts.push(seg);
  }
  let out = (absolute ? '/' : '') + parts.join('/');
  if (trailing && parts.length > 0) out += '/';
  return out;
}

export function normalizePathWin(s: string): string {
  return normalizePath(s.indexOf('\\') < 0 ? s : s.replace(/\\/g, '/'));
}

export function hexEncode(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

export function hexDecode(s: string): string {
  return Buffer.from(s.length % 2 === 0 ? s : s.slice(0, -1), 'hex').toString('latin1');
}

export function base64Decode(s: string): string {
  return Buffer.from(s, 'base64').toString('latin1');
}

export function base64Encode(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64');
}

// The last input and digest of each: the CRS hashes every request's User-Agent (901318,
// t:sha1,t:hexEncode), mostly the same few strings; a hash object costs microseconds, a
// comparison with the previous input far less. Exact: the same input has the same digest.
// Only short inputs are kept (a header, not a body held past its request).
let sha1In: string | undefined;
let sha1Out = '';
let md5In: string | undefined;
let md5Out = '';

export function sha1(s: string): string {
  if (s.length > 1024) return createHash('sha1').update(s, 'latin1').digest().toString('latin1');
  if (s !== sha1In) {
    sha1Out = createHash('sha1').update(s, 'latin1').digest().toString('latin1');
    sha1In = s;
  }
  return sha1Out;
}

export function md5(s: string): string {
  if (s.length > 1024) return createHash('md5').update(s, 'latin1').digest().toString('latin1');
  if (s !== md5In) {
    md5Out = createHash('md5').update(s, 'latin1').digest().toString('latin1');
    md5In = s;
  }
  return md5Out;
}

export function length(s: string): string {
  return String(s.length);
}

export function trim(s: string): string {
  return s.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
}

/** Valid UTF-8 sequences of two or more bytes become %uHHHH; everything else is kept. */
export function utf8toUnicode(s: string): string {
  if (!/[\xc0-\xff]/.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const b = s.charCodeAt(i);
    let need = 0;
    let cp = 0;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
    }
    let ok = need > 0 && i + need < s.length;
    for (let k = 1; ok && k <= need; k++) {
      const c = s.charCodeAt(i + k);
      if ((c & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) {
      out += s[i];
      continue;
    }
    out += `%u${cp.toString(16).padStart(4, '0')}`;
    i += need;
  }
  return out;
}

export const TRANSFORMS: Readonly<Record<string, Transform>> = Object.freeze({
  lowercase,
  uppercase,
  urldecode: urlDecode,
  urldecodeuni: urlDecodeUni,
  htmlentitydecode: htmlEntityDecode,
  jsdecode: jsDecode,
  cssdecode: cssDecode,
  cmdline: cmdLine,
  compresswhitespace: compressWhitespace,
  removewhitespace: removeWhitespace,
  removenulls: removeNulls,
  replacenulls: replaceNulls,
  replacecomments: replaceComments,
  removecomments: removeComments,
  normalizepath: normalizePath,
  normalisepath: normalizePath,
  normalizepathwin: normalizePathWin,
  normalisepathwin: normalizePathWin,
  hexencode: hexEncode,
  hexdecode: hexDecode,
  base64decode: base64Decode,
  base64encode: base64Encode,
  sha1,
  md5,
  length,
  trim,
  utf8tounicode: utf8toUnicode,
});
