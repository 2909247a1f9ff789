// Request body processors (URLENCODED, JSON, MULTIPART; XML in xml.ts), on the body as bytes (latin1). Each is
// bounded: at most `maxArgs` arguments and, for JSON, `maxDepth` levels; anything beyond, and
// any parse error, sets REQBODY_ERROR with a message, which the CRS's rule 200002-style checks
// (and usher's own setup) act on. The whole-body size bound is the filter's (SecRequestBodyLimit).
import type { BodyResult } from './transaction.js';
import { urlDecode } from './transforms.js';
import { ListBuilder, parseUrlEncoded } from './variables.js';
import { parseXml } from './xml.js';

const XML_MAX_NODES = 100_000;
const XML_MAX_DEPTH = 257;

export interface BodyLimits {
  readonly maxArgs: number;
  readonly maxDepth: number;
}

/** `bytes`: the body as a Buffer when the caller has it (`body` is it as latin1), for checks on the bytes themselves. */
export function processBody(processor: string | undefined, body: string, contentType: string | undefined, limits: BodyLimits, bytes?: Buffer): BodyResult {
  switch (processor) {
    case 'URLENCODED':
      return urlencoded(body, limits);
    case 'JSON':
      return json(body, limits);
    case 'MULTIPART':
      return multipart(body, contentType ?? '', limits);
    case 'XML': {
      // 257 levels (not the JSON depth setting): libxml2's own limit without XML_PARSE_HUGE (measured: ModSecurity refuses
      // 258); 100,000 elements and attributes, far above what an API sends, a bound
      // on the lists kept (the body itself is bounded by SecRequestBodyLimit)
      const r = parseXml(body, { maxDepth: XML_MAX_DEPTH, maxNodes: XML_MAX_NODES }, bytes);
      return { processor: 'XML', error: r.error, args: undefined, xml: r.xml };
    }
    default:
      return { processor, error: undefined, args: undefined };
  }
}

function urlencoded(body: string, limits: BodyLimits): BodyResult {
  const args = new ListBuilder();
  parseUrlEncoded(body, args, undefined, urlDecode);
  if (args.values.length > limits.maxArgs) {
    return { processor: 'URLENCODED', error: `URLENCODED: more than ${limits.maxArgs} arguments`, args: truncate(args, limits.maxArgs) };
  }
  return { processor: 'URLENCODED', error: undefined, args };
}

function truncate(b: ListBuilder, n: number): ListBuilder {
  const out = new ListBuilder();
  for (let i = 0; i < n && i < b.values.length; i++) out.add(b.names[i] as string, b.values[i] as string);
  return out;
}

/** Back to bytes: JSON escapes (\u20ac) can make chars above 0xff; values stay byte strings. */
function bytes(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return Buffer.from(s, 'utf8').toString('latin1');
  return s;
}

function json(body: string, limits: BodyLimits): BodyResult {
  const args = new ListBuilder();
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    return { processor: 'JSON', error: `JSON parsing error: ${(err as Error).message}`, args };
  }
  let error: string | undefined;
  // argument names as ModSecurity v3 makes them: keys joined with '.', array items by index
  const walk = (v: unknown, prefix: string, depth: number): void => {
    if (error !== undefined) return;
    if (depth > limits.maxDepth) {
      error = `JSON: nesting deeper than ${limits.maxDepth}`;
      return;
    }
    if (args.values.length >= limits.maxArgs) {
      error = `JSON: more than ${limits.maxArgs} arguments`;
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], prefix === '' ? String(i) : `${prefix}.${i}`, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, prefix === '' ? bytes(k) : `${prefix}.${bytes(k)}`, depth + 1);
    } else {
      const name = prefix === '' ? 'json' : prefix;
      args.add(name, v === null ? '' : bytes(String(v)));
    }
  };
  walk(doc, '', 0);
  return { processor: 'JSON', error, args };
}

function multipart(body: string, contentType: string, limits: BodyLimits): BodyResult {
  const flags = new Map<string, string>();
  const args = new ListBuilder();
  const files = new ListBuilder();
  const filesNames = new ListBuilder();
  const filesSizes = new ListBuilder();
  const partHeaders = new ListBuilder();
  const result = (error: string | undefined): BodyResult => {
    let strict = false;
    for (const v of flags.values()) if (v === '1') strict = true;
    flags.set('MULTIPART_STRICT_ERROR', strict || error !== undefined ? '1' : '0');
    return { processor: 'MULTIPART', error, args, files, filesNames, filesSizes, partHeaders, multipartFlags: flags };
  };
  const m = /;\s*boundary\s*=\s*("([^"]*)"|[^;,\s]*)/i.exec(contentType);
  if (m === null || (m[2] ?? m[1] ?? '') === '') return result('Multipart: boundary not found in Content-Type');
  if (m[2] !== undefined) flags.set('MULTIPART_BOUNDARY_QUOTED', '1');
  if (/boundary\s+=|=\s+/i.test(contentType)) flags.set('MULTIPART_BOUNDARY_WHITESPACE', '1');
  const boundary = `--${m[2] ?? m[1]}`;
  let at = body.indexOf(boundary);
  if (at < 0) return result('Multipart: no boundary in the body');
  if (at > 0 && body.slice(0, at).trim() !== '') flags.set('MULTIPART_DATA_BEFORE', '1');
  let parts = 0;
  for (;;) {
    let p = at + boundary.length;
    if (body.startsWith('--', p)) {
      const after = body.slice(p + 2).replace(/^\r?\n/, '');
      if (after.trim() !== '') flags.set('MULTIPART_DATA_AFTER', '1');
      break;
    }
    // the boundary line ends with CRLF (LF alone is flagged)
    if (body.startsWith('\r\n', p)) p += 2;
    else if (body[p] === '\n') {
      flags.set('MULTIPART_LF_LINE', '1');
      p += 1;
    } else return result('Multipart: garbage after a boundary');
    const next = body.indexOf(`\r\n${boundary}`, p);
    const nextLf = next < 0 ? body.indexOf(`\n${boundary}`, p) : -1;
    if (next < 0 && nextLf < 0) return result('Multipart: final boundary missing');
    const end = next >= 0 ? next : nextLf;
    if (next < 0) flags.set('MULTIPART_LF_LINE', '1');
    const part = body.slice(p, end);
    at = end + (next >= 0 ? 2 : 1);
    if (++parts > limits.maxArgs) return result(`Multipart: more than ${limits.maxArgs} parts`);
    let sep = part.indexOf('\r\n\r\n');
    let sepLen = 4;
    if (sep < 0) {
      sep = part.indexOf('\n\n');
      sepLen = 2;
      if (sep >= 0) flags.set('MULTIPART_LF_LINE', '1');
    }
    if (sep < 0) {
      flags.set('MULTIPART_INVALID_PART', '1');
      return result('Multipart: a part without headers');
    }
    const headerText = part.slice(0, sep);
    const content = part.slice(sep + sepLen);
    const lines: string[] = [];
    for (const line of headerText.split(/\r?\n/)) {
      if (/^[ \t]/.test(line) && lines.length > 0) {
        flags.set('MULTIPART_HEADER_FOLDING', '1');
        lines[lines.length - 1] += line.trim();
      } else if (line !== '') lines.push(line);
    }
    let name: string | undefined;
    let filename: string | undefined;
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) {
        flags.set('MULTIPART_INVALID_PART', '1');
        return result('Multipart: a part header without a colon');
      }
      if (line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue;
      const v = line.slice(colon + 1);
      if (!/^\s*form-data\s*(;|$)/i.test(v)) return result('Multipart: Content-Disposition is not form-data');
      for (const pm of v.matchAll(/;\s*([a-zA-Z*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g)) {
        const key = (pm[1] ?? '').toLowerCase();
        if (pm[2] === undefined && /['\\]/.test(pm[3] ?? '')) flags.set('MULTIPART_INVALID_QUOTING', '1');
        const val = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : (pm[3] ?? '');
        if (key === 'name') name = val;
        else if (key === 'filename' || key === 'filename*') filename = val;
      }
      if (!/;\s*name\s*=/.test(v)) flags.set('MULTIPART_MISSING_SEMICOLON', /name\s*=/.test(v) ? '1' : (flags.get('MULTIPART_MISSING_SEMICOLON') ?? '0'));
    }
    if (name === undefined) return result('Multipart: a part without a name');
    for (const line of lines) partHeaders.add(name, line);
    if (filename !== undefined) {
      files.add(name, filename);
      filesNames.add(name, name);
      filesSizes.add(name, String(content.length));
    } else args.add(name, content);
  }
  return result(undefined);
}
