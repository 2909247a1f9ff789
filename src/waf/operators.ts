// The operators (@rx, @pm, @streq, ...), each compiled once at load into a function of the
// transformed value. A match may leave captures (TX:0-9) in `ctx.captures` when the rule asks
// for them. Arguments with macros (@within %{tx.allowed_methods}) expand per call.
// @detectSQLi / @detectXSS are usher's own detectors (src/waf/detect/, no library).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { AhoCorasick } from './aho-corasick.js';
import { detectSqli, detectXss } from './detect/index.js';
import { type MacroSource, compileMacro, expandMacro } from './macro.js';
import { PcreError, translatePcre } from './pcre.js';
import { type LiteralFilters, requiredLiterals } from './prefilter.js';

export interface OperatorContext extends MacroSource {
  /** Set by the engine when the rule has `capture`: the operator fills [0..9]. */
  captures: string[] | undefined;
  /** The rule set's literal prefilters over `value` (LiteralFilters.scan), memoised per value. */
  literalsIn?(filters: LiteralFilters, value: string): Uint8Array;
}

export type OperatorFn = (value: string, ctx: OperatorContext) => boolean;

export interface OperatorEnv {
  /** The rule file's directory (for @pmFromFile and @ipMatchFromFile). */
  readonly dir: string;
  /** The rule set's shared @rx prefilters (built once every rule is compiled). */
  readonly literals?: LiteralFilters;
}

export interface CompiledOperator {
  readonly name: string;
  readonly fn: OperatorFn;
  /** For reports: constructs only approximately translated (possessive, atomic). */
  readonly approximations: readonly string[];
}

/** An operator (or an argument) the engine cannot run: the rule is skipped and listed. */
export class UnsupportedError extends Error {
  override name = 'UnsupportedError';
}

type Factory = (arg: string, env: OperatorEnv) => OperatorFn | { fn: OperatorFn; approximations: readonly string[] };

const unsupported =
  (why: string): Factory =>
  () => {
    throw new UnsupportedError(why);
  };

/** @detectSQLi from a detector returning the fingerprint of an injection (captured as TX:0). */
export const sqliOperator =
  (detect: (input: string) => string | undefined): Factory =>
  () =>
  (v, ctx) => {
    const fp = detect(v);
    if (fp === undefined) return false;
    if (ctx.captures !== undefined) ctx.captures[0] = fp;
    return true;
  };

/** @detectXSS from a detector returning whether the input is an XSS attack. */
export const xssOperator =
  (detect: (input: string) => boolean): Factory =>
  () =>
  (v, ctx) => {
    if (!detect(v)) return false;
    if (ctx.captures !== undefined) ctx.captures[0] = v;
    return true;
  };

function rxTest(re: RegExp, v: string, ctx: OperatorContext): boolean {
  if (ctx.captures === undefined) return re.test(v);
  const m = re.exec(v);
  if (m === null) return false;
  for (let i = 0; i < 10; i++) ctx.captures[i] = m[i] ?? '';
  return true;
}

/** Patterns made from a macro's value, by expanded text (the CRS's come from a few TX settings). */
const MACRO_RX_CACHE = 64;

function rx(arg: string, env?: OperatorEnv): { fn: OperatorFn; approximations: readonly string[] } {
  const macro = compileMacro(arg);
  if (macro.constant === undefined) return { fn: rxWithMacros(macro), approximations: [] };
  let t;
  try {
    t = translatePcre(arg);
  } catch (err) {
    if (err instanceof PcreError) throw new UnsupportedError(`@rx pattern not translatable: ${err.message}`);
    throw err;
  }
  const re = new RegExp(t.source, t.flags);
  // V8 compiles a regex on its first exec: do it at load, not in the first requests
  re.test('');
  // a value holding none of the literals every match needs cannot match (prefilter.ts); the
  // rule set's filters share one pass per value, memoised by the transaction
  const lits = t.flags === '' ? requiredLiterals(t.source) : undefined;
  if (lits !== undefined) {
    const filters = env?.literals;
    if (filters !== undefined) {
      const id = filters.add(lits);
      return {
        fn: (v, ctx) => (ctx.literalsIn === undefined ? filters.scan(v) : ctx.literalsIn(filters, v))[id] === 1 && rxTest(re, v, ctx),
        approximations: t.approximations,
      };
    }
    const pre = new AhoCorasick(lits);
    return { fn: (v, ctx) => pre.search(v) !== undefined && rxTest(re, v, ctx), approximations: t.approximations };
  }
  return { fn: (v, ctx) => rxTest(re, v, ctx), approximations: t.approximations };
}

/**
 * `@rx ^%{tx.allowed_request_content_type_charset}$` (CRS 920480): as ModSecurity v3 does, the
 * pattern is expanded per call and compiled then (cached by its text); one that does not
 * translate or compile matches nothing.
 */
function rxWithMacros(macro: ReturnType<typeof compileMacro>): OperatorFn {
  const cache = new Map<string, RegExp | null>();
  return (v, ctx) => {
    const text = expandMacro(macro, ctx);
    let re = cache.get(text);
    if (re === undefined) {
      try {
        const t = translatePcre(text);
        re = new RegExp(t.source, t.flags);
      } catch {
        re = null;
      }
      if (cache.size >= MACRO_RX_CACHE) cache.clear();
      cache.set(text, re);
    }
    return re !== null && rxTest(re, v, ctx);
  };
}

function pmWith(phrases: string[], env?: OperatorEnv): OperatorFn {
  const ac = new AhoCorasick(phrases);
  // in a rule set, the shared pass over the value (prefilter.ts) says first whether any phrase is
  // there: the same automaton's answer (ASCII folded), so only a value holding one is searched
  const filters = env?.literals;
  const id = filters === undefined || ac.size === 0 ? -1 : filters.add(phrases.filter((p) => p.length > 0));
  return (v, ctx) => {
    if (id >= 0 && ctx.literalsIn !== undefined && ctx.literalsIn(filters as LiteralFilters, v)[id] !== 1) return false;
    const hit = ac.search(v);
    if (hit === undefined) return false;
    if (ctx.captures !== undefined) ctx.captures[0] = hit;
    return true;
  };
}

function dataFileLines(arg: string, env: OperatorEnv): string[] {
  const out: string[] = [];
  for (const name of arg.trim().split(/\s+/)) {
    if (/^https?:/.test(name)) throw new UnsupportedError(`a data file by URL (${name})`);
    const path = isAbsolute(name) ? name : join(env.dir, name);
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (err) {
      throw new Error(`cannot read data file ${path}: ${(err as Error).message}`, { cause: err });
    }
    for (const line of text.split(/\r?\n/)) {
      const l = line.trim();
      if (l !== '' && !l.startsWith('#')) out.push(l);
    }
  }
  return out;
}

/** A string operator whose argument may hold macros. */
function stringOp(arg: string, test: (value: string, param: string) => boolean): OperatorFn {
  const m = compileMacro(arg);
  if (m.constant !== undefined) {
    const param = m.constant;
    return (v) => test(v, param);
  }
  return (v, ctx) => test(v, expandMacro(m, ctx));
}

/** ModSecurity reads numbers as C's atoi: leading digits, 0 when none. */
export function toInt(s: string): number {
  const n = parseInt(s, 10);
  return Number.isNaN(n) ? 0 : n;
}

function numericOp(arg: string, test: (a: number, b: number) => boolean): OperatorFn {
  const m = compileMacro(arg);
  if (m.constant !== undefined) {
    const b = toInt(m.constant);
    return (v) => test(toInt(v), b);
  }
  return (v, ctx) => test(toInt(v), toInt(expandMacro(m, ctx)));
}

/** An address as 8 16-bit groups (IPv4 as ::ffff:a.b.c.d), or undefined. */
function ipGroups(ip: string): number[] | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const p = ip.split('.').map(Number);
    return [0, 0, 0, 0, 0, 0xffff, ((p[0] as number) << 8) | (p[1] as number), ((p[2] as number) << 8) | (p[3] as number)];
  }
  if (family !== 6) return undefined;
  let text = ip.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const t = tail === undefined || tail === '' ? [] : tail.split(':').map((x) => parseInt(x, 16));
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * @ipMatch: addresses and CIDR ranges, IPv4 and IPv6, compared as 16-bit groups (node's
 * BlockList.check costs about 10 us a call: it builds a SocketAddress each time).
 */
function ipMatch(list: string[]): OperatorFn {
  const nets: Array<{ groups: number[]; bits: number }> = [];
  for (const entry of list) {
    const [addr, bits] = entry.split('/');
    const groups = ipGroups(addr ?? '');
    if (groups === undefined) throw new Error(`@ipMatch: not an IP address: ${entry}`);
    const v4 = isIP(addr ?? '') === 4;
    const n = bits === undefined ? 128 : Number(bits) + (v4 ? 96 : 0);
    if (!Number.isInteger(n) || n < 0 || n > 128) throw new Error(`@ipMatch: bad prefix length in ${entry}`);
    nets.push({ groups, bits: n });
  }
  return (v) => {
    const g = ipGroups(v);
    if (g === undefined) return false;
    for (const net of nets) {
      let left = net.bits;
      let ok = true;
      for (let i = 0; i < 8 && left > 0; i++, left -= 16) {
        const mask = left >= 16 ? 0xffff : (0xffff << (16 - left)) & 0xffff;
        if (((g[i] as number) & mask) !== ((net.groups[i] as number) & mask)) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  };
}

function byteRanges(arg: string): OperatorFn {
  const ok = new Uint8Array(256);
  for (const part of arg.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const [lo, hi] = p.split('-').map((x) => Number(x.trim()));
    if (lo === undefined || Number.isNaN(lo) || (hi !== undefined && Number.isNaN(hi)) || lo > 255 || (hi ?? lo) > 255) {
      throw new Error(`@validateByteRange: bad range "${p}"`);
    }
    for (let b = lo; b <= (hi ?? lo); b++) ok[b] = 1;
  }
  return (v) => {
    for (let i = 0; i < v.length; i++) if (ok[v.charCodeAt(i) & 0xff] === 0) return true;
    return false;
  };
}

const isHexCode = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** True (a match) when a % is not followed by two hex digits. */
export function invalidUrlEncoding(v: string): boolean {
  for (let i = v.indexOf('%'); i >= 0; i = v.indexOf('%', i + 1)) {
    if (i + 2 >= v.length || !isHexCode(v.charCodeAt(i + 1)) || !isHexCode(v.charCodeAt(i + 2))) return true;
  }
  return false;
}

/** True (a match) when the bytes are not valid UTF-8 (truncated, overlong, surrogates, > U+10FFFF). */
export function invalidUtf8(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const b = v.charCodeAt(i);
    if (b < 0x80) continue;
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc0 && b <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf7) {
      need = 3;
      min = 0x10000;
      cp = b & 0x07;
    } else return true;
    if (i + need >= v.length) return true;
    for (let k = 1; k <= need; k++) {
      const c = v.charCodeAt(i + k);
      if ((c & 0xc0) !== 0x80) return true;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return true;
    i += need;
  }
  return false;
}

const isWordChar = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;

function containsWord(v: string, w: string): boolean {
  if (w === '') return true;
  for (let i = v.indexOf(w); i >= 0; i = v.indexOf(w, i + 1)) {
    const before = i === 0 ? -1 : v.charCodeAt(i - 1);
    const after = i + w.length >= v.length ? -1 : v.charCodeAt(i + w.length);
    if ((before < 0 || !isWordChar(before)) && (after < 0 || !isWordChar(after))) return true;
  }
  return false;
}

/** By lower-case name. The two detector entries are where src/waf/detect/ is wired in. */
export const OPERATORS: Readonly<Record<string, Factory>> = Object.freeze({
  rx,
  // @pm stays out of the shared literal pass (pmWith's env): with the CRS's phrase lists in it
  // the shared automaton's tables took 5.4 MiB more and the loaded CRS's RSS went from about 50
  // to 55-82 MiB (#14's bound: 60 MiB in all), for a search that is one table read per byte.
  pm: (arg: string) => pmWith(arg.trim().split(/\s+/)),
  pmf: (arg: string, env: OperatorEnv) => pmWith(dataFileLines(arg, env)),
  pmfromfile: (arg: string, env: OperatorEnv) => pmWith(dataFileLines(arg, env)),
  streq: (arg: string) => stringOp(arg, (v, p) => v === p),
  within: (arg: string) => stringOp(arg, (v, p) => p.indexOf(v) >= 0),
  contains: (arg: string) => stringOp(arg, (v, p) => v.indexOf(p) >= 0),
  containsword: (arg: string) => stringOp(arg, containsWord),
  beginswith: (arg: string) => stringOp(arg, (v, p) => v.startsWith(p)),
  endswith: (arg: string) => stringOp(arg, (v, p) => v.endsWith(p)),
  eq: (arg: string) => numericOp(arg, (a, b) => a === b),
  ge: (arg: string) => numericOp(arg, (a, b) => a >= b),
  gt: (arg: string) => numericOp(arg, (a, b) => a > b),
  le: (arg: string) => numericOp(arg, (a, b) => a <= b),
  lt: (arg: string) => numericOp(arg, (a, b) => a < b),
  ipmatch: (arg: string) => ipMatch(arg.split(',').map((s) => s.trim()).filter((s) => s !== '')),
  ipmatchf: (arg: string, env: OperatorEnv) => ipMatch(dataFileLines(arg, env)),
  ipmatchfromfile: (arg: string, env: OperatorEnv) => ipMatch(dataFileLines(arg, env)),
  validatebyterange: (arg: string) => byteRanges(arg),
  validateurlencoding: () => (v: string) => invalidUrlEncoding(v),
  validateutf8encoding: () => (v: string) => invalidUtf8(v),
  unconditionalmatch: () => () => true,
  nomatch: () => () => false,
  detectsqli: sqliOperator(detectSqli),
  detectxss: xssOperator(detectXss),
  geolookup: unsupported('@geoLookup needs a GeoIP database (SecGeoLookupDb), which usher does not load'),
  rbl: unsupported('@rbl (DNS block lists) makes a DNS query per request; not supported'),
});

/** Compiles `@name arg` (negation applied by the caller); throws UnsupportedError. */
export function compileOperator(name: string, arg: string, env: OperatorEnv): CompiledOperator {
  const factory = OPERATORS[name.toLowerCase()];
  if (factory === undefined) throw new UnsupportedError(`unknown operator @${name}`);
  const made = factory(arg, env);
  if (typeof made === 'function') return { name, fn: made, approximations: [] };
  return { name, fn: made.fn, approximations: made.approximations };
}
