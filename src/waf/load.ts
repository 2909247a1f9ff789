// Reads rule files into one directive list: `Include` (and `IncludeOptional`) is resolved
// relative to the including file, with `*`, `?` and `[...]` globs in any path segment, matches
// taken in name order as Apache and ModSecurity do. Cycles are refused.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { type Directive, type Origin, SecLangError, parseSecLang } from './parse.js';

const GLOB = /[*?[]/;

function globToRegExp(segment: string): RegExp {
  let src = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] ?? '';
    if (c === '*') src += '[^/]*';
    else if (c === '?') src += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) src += '\\[';
      else {
        src += '[' + segment.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else src += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

/** The files a path (maybe a glob) names, sorted; a glob matching nothing gives none. */
export function expandGlob(pattern: string): string[] {
  if (!GLOB.test(pattern)) return [pattern];
  const parts = pattern.split(sep);
  let bases = [parts[0] === '' ? sep : (parts[0] ?? '')];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (part === '') continue;
    const next: string[] = [];
    for (const base of bases) {
      if (!GLOB.test(part)) {
        next.push(join(base, part));
        continue;
      }
      const re = globToRegExp(part);
      let names: string[];
      try {
        names = readdirSync(base).sort();
      } catch {
        continue;
      }
      for (const name of names) if (re.test(name)) next.push(join(base, name));
    }
    bases = next;
  }
  return bases.filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/** Reads a rule file (or glob) and everything it includes, in order. */
export function loadRuleFiles(path: string, from?: Origin): Directive[] {
  const out: Directive[] = [];
  const seen = new Set<string>();
  const visit = (pattern: string, origin: Origin | undefined, optional: boolean): void => {
    // A glob that matches nothing includes nothing (Apache's rule); IncludeOptional may miss.
    const files = expandGlob(pattern).filter((f) => !optional || existsSync(f));
    for (const file of files) {
      const abs = resolve(file);
      if (seen.has(abs)) {
        const where = origin ?? { file: abs, line: 0 };
        throw new SecLangError(where, `Include: ${abs} is included twice (a cycle or a repeated Include)`);
      }
      seen.add(abs);
      let text: string;
      try {
        text = readFileSync(abs, 'latin1');
      } catch (err) {
        if (origin !== undefined) throw new SecLangError(origin, `Include: cannot read ${abs}: ${(err as Error).message}`, { cause: err });
        throw err;
      }
      for (const d of parseSecLang(text, abs)) {
        if (d.lname === 'include' || d.lname === 'includeoptional') {
          const target = d.args[0];
          if (target === undefined) throw new SecLangError(d.origin, `${d.name} needs a path`);
          visit(isAbsolute(target) ? target : join(dirname(abs), target), d.origin, d.lname === 'includeoptional');
        } else out.push(d);
      }
    }
  };
  visit(path, from, false);
  return out;
}
