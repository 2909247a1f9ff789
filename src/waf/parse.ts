// SecLang as ModSecurity and Coraza read it, as far as the OWASP CRS writes it: one directive a
// logical line (a trailing backslash continues it onto the next physical line), `#` comments,
// arguments either bare words or double-quoted strings in which only `\"` is an escape (every
// other backslash is kept for the operator: Apache's ap_getword_conf rule, which ModSecurity v2
// and v3's scanner both follow, so a CRS regex's `\\` reaches PCRE as written).
// `Include` (with globs) is resolved by load.ts; this file knows no file system.

/** Where a directive was read: its file and the line it starts on (1-based). */
export interface Origin {
  readonly file: string;
  readonly line: number;
}

export interface Directive {
  /** As written (`SecRule`); directive names are case-insensitive, compare with `lname`. */
  readonly name: string;
  readonly lname: string;
  readonly args: readonly string[];
  readonly origin: Origin;
}

/** A rule file that cannot be read as SecLang; the message starts with file:line. */
export class SecLangError extends Error {
  readonly origin: Origin;
  constructor(origin: Origin, message: string, options?: { cause?: unknown }) {
    super(`${origin.file}:${origin.line}: ${message}`, options);
    this.name = 'SecLangError';
    this.origin = origin;
  }
}

/** Splits a file's text into directives (comments and blank lines dropped). */
export function parseSecLang(text: string, file: string): Directive[] {
  const out: Directive[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    // A comment line ends at its end even when it ends in a backslash (ModSecurity v3's scanner).
    if (/^\s*#/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1) + (lines[++i] ?? '');
    }
    if (line.trim() === '') continue;
    const origin = { file, line: start + 1 };
    const words = splitWords(line, origin);
    const name = words[0];
    if (name === undefined) continue;
    out.push({ name, lname: name.toLowerCase(), args: words.slice(1), origin });
  }
  return out;
}

function splitWords(line: string, origin: Origin): string[] {
  const words: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 0x20 || c === 0x09) {
      i++;
      continue;
    }
    if (c === 0x22 /* " */) {
      let word = '';
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const d = line[j];
        if (d === '\\' && line[j + 1] === '"') {
          word += '"';
          j += 2;
          continue;
        }
        if (d === '"') {
          closed = true;
          j++;
          break;
        }
        word += d;
        j++;
      }
      if (!closed) throw new SecLangError(origin, `unterminated quoted argument: ${line.slice(i, i + 60)}`);
      words.push(word);
      i = j;
      continue;
    }
    let j = i;
    while (j < n && line[j] !== ' ' && line[j] !== '\t') j++;
    words.push(line.slice(i, j));
    i = j;
  }
  return words;
}
