// The variables (collections) a rule can name, and how each is read from a request. A
// collection is a list of (name, value) pairs; a scalar is a one-entry list named after itself.
// Lists are built at most once per request (per body phase for the ARGS family) and cached on
// the transaction; TX and the other writable collections are read from their maps directly.

/** A read-only view of one collection: names (as sent), lower-case names, values. */
export interface Collection {
  readonly names: readonly string[];
  readonly lnames: readonly string[];
  readonly values: readonly string[];
  /** A scalar variable: MATCHED_VAR_NAME is the collection's own name. */
  readonly scalar: boolean;
}

export const EMPTY: Collection = Object.freeze({ names: [], lnames: [], values: [], scalar: false });

export class ListBuilder {
  readonly names: string[] = [];
  readonly lnames: string[] = [];
  readonly values: string[] = [];
  readonly scalar = false;
  add(name: string, value: string): void {
    this.names.push(name);
    this.lnames.push(name.toLowerCase());
    this.values.push(value);
  }
}

export function scalar(name: string, value: string | undefined): Collection {
  if (value === undefined) return EMPTY;
  return { names: [name], lnames: [name.toLowerCase()], values: [value], scalar: true };
}

/** The writable collections (setvar), kept as maps with lower-case keys. */
export const MAP_COLLECTIONS = new Set(['TX', 'IP', 'GLOBAL', 'SESSION', 'USER', 'RESOURCE']);

/** Every collection a rule may name (anything else makes the rule unsupported). */
export const COLLECTIONS: ReadonlySet<string> = new Set([
  ...MAP_COLLECTIONS,
  'ARGS', 'ARGS_GET', 'ARGS_POST', 'ARGS_NAMES', 'ARGS_GET_NAMES', 'ARGS_POST_NAMES', 'ARGS_COMBINED_SIZE',
  'REQUEST_LINE', 'REQUEST_METHOD', 'REQUEST_PROTOCOL', 'REQUEST_URI', 'REQUEST_URI_RAW', 'REQUEST_FILENAME', 'REQUEST_BASENAME',
  'PATH_INFO', 'QUERY_STRING', 'REQUEST_HEADERS', 'REQUEST_HEADERS_NAMES', 'REQUEST_COOKIES', 'REQUEST_COOKIES_NAMES',
  'REQUEST_BODY', 'REQUEST_BODY_LENGTH', 'REQBODY_ERROR', 'REQBODY_ERROR_MSG', 'REQBODY_PROCESSOR', 'REQBODY_PROCESSOR_ERROR',
  'REMOTE_ADDR', 'REMOTE_PORT', 'REMOTE_HOST', 'SERVER_NAME', 'SERVER_PORT', 'UNIQUE_ID', 'DURATION', 'TIME', 'TIME_EPOCH',
  'MATCHED_VAR', 'MATCHED_VARS', 'MATCHED_VAR_NAME', 'MATCHED_VARS_NAMES',
  'FILES', 'FILES_NAMES', 'FILES_SIZES', 'FILES_COMBINED_SIZE', 'FILES_TMPNAMES',
  'MULTIPART_PART_HEADERS', 'MULTIPART_FILENAME', 'MULTIPART_NAME', 'MULTIPART_STRICT_ERROR', 'MULTIPART_UNMATCHED_BOUNDARY',
  'MULTIPART_BOUNDARY_QUOTED', 'MULTIPART_BOUNDARY_WHITESPACE', 'MULTIPART_DATA_BEFORE', 'MULTIPART_DATA_AFTER',
  'MULTIPART_HEADER_FOLDING', 'MULTIPART_LF_LINE', 'MULTIPART_MISSING_SEMICOLON', 'MULTIPART_INVALID_QUOTING',
  'MULTIPART_INVALID_PART', 'MULTIPART_INVALID_HEADER_FOLDING', 'MULTIPART_FILE_LIMIT_EXCEEDED', 'MULTIPART_CRLF_LF_LINES',
  'INBOUND_DATA_ERROR', 'URLENCODED_ERROR', 'FULL_REQUEST_LENGTH',
  // XML: the XML body processor's '/*' and '//@*' (xml.ts)
  'XML',
  // response side (phases 3 and 4): not evaluated by usher yet; the variables exist so the
  // CRS's response rules load (their phases never run)
  'RESPONSE_BODY', 'RESPONSE_STATUS', 'RESPONSE_HEADERS', 'RESPONSE_HEADERS_NAMES', 'RESPONSE_PROTOCOL',
  'RESPONSE_CONTENT_TYPE', 'RESPONSE_CONTENT_LENGTH', 'OUTBOUND_DATA_ERROR',
  // GEO: filled by @geoLookup, which usher does not have: always empty
  'GEO', 'ENV', 'RULE',
]);

const IDS = new Map([...COLLECTIONS].map((name, i) => [name, i]));

/** A collection's small-integer id (a transaction caches collections in an array by it). */
export function collectionId(name: string): number {
  return IDS.get(name) ?? -1;
}

/** Collections that change while a request's rules run: never cached. */
export const DYNAMIC_COLLECTIONS: ReadonlySet<string> = new Set(['MATCHED_VAR', 'MATCHED_VARS', 'MATCHED_VAR_NAME', 'MATCHED_VARS_NAMES', 'REQBODY_PROCESSOR', 'DURATION', 'TIME', 'TIME_EPOCH']);

/** Parses a query string or URL-encoded body into (name, value) pairs, decoding both. */
export function parseUrlEncoded(text: string, out: ListBuilder, names: ListBuilder | undefined, decode: (s: string) => string): void {
  if (text === '') return;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('&', start);
    if (end < 0) end = text.length;
    if (end > start) {
      const pair = text.slice(start, end);
      const eq = pair.indexOf('=');
      const name = decode(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
      out.add(name, value);
      names?.add(name, name);
    }
    start = end + 1;
  }
}

/** Cookie: name=value; name2=value2 (values as sent, as ModSecurity v3 keeps them). */
export function parseCookies(header: string, out: ListBuilder, names: ListBuilder): void {
  for (const part of header.split(';')) {
    const p = part.replace(/^[ \t]+/, '');
    if (p === '') continue;
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? '' : p.slice(eq + 1);
    out.add(name, value);
    names.add(name, name);
  }
}
