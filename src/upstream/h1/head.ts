// The upstream request head, built once into one latin1 string that the socket writes as it is
// (node encodes a latin1 string straight into the write: no Buffer object). The fields are the
// exchange's flat name/value array: node:http validated what the client sent and usher's own
// fields are well formed, so nothing is checked again unless an upstream_request filter edited
// the head (`check`), where undici would have refused a bad field (RFC 9110 §5.5) or target.
// Framing is the client's own business: any Content-Length or Transfer-Encoding in the fields
// is dropped and written from the body (RFC 9112 §6.1-§6.2), as undici does.
import { H1Error } from './errors.js';

/** How the body that follows the head is framed. */
export const BODY_NONE = -1;
export const BODY_CHUNKED = -2;

export interface BuiltHead {
  text: string;
  /** BODY_NONE, BODY_CHUNKED, or the Content-Length sent. */
  length: number;
}

/** RFC 9110 §9.3: methods whose request usually has content get Content-Length: 0 without one (undici's expectsPayload). */
const EXPECTS_PAYLOAD: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
const TARGET_RE = /^[\x21-\x7e\x80-\xff]+$/;

/**
 * The head for `method target` with `fields`; `body`: a Buffer's length, BODY_CHUNKED for a
 * stream of unknown length, or BODY_NONE; a stream with a Content-Length field keeps it.
 * `upgrade`: the protocol of an upgrade request.
 */
export function buildHead(method: string, target: string, fields: readonly string[], body: number | 'stream', upgrade: string | undefined, check: boolean, out: BuiltHead): void {
  if (check) checkHead(method, target, fields);
  let text = `${method} ${target} HTTP/1.1\r\n`;
  let declared = -1;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const n = name.length;
    // content-length (14) and transfer-encoding (17): framing is written below. Length and
    // first letter before a lower-casing (x-forwarded-proto is 17 long too).
    if (n === 14 || n === 17) {
      const c0 = name.charCodeAt(0) | 0x20;
      if (n === 14 && c0 === 0x63 && name.toLowerCase() === 'content-length') {
        declared = Number(fields[i + 1]);
        continue;
      }
      if (n === 17 && c0 === 0x74 && name.toLowerCase() === 'transfer-encoding') continue;
    }
    text += `${name}: ${fields[i + 1]!}\r\n`;
  }
  let length: number;
  if (body === 'stream') {
    if (declared >= 0 && Number.isSafeInteger(declared)) {
      length = declared;
      text += `content-length: ${declared}\r\n`;
    } else {
      length = BODY_CHUNKED;
      text += 'transfer-encoding: chunked\r\n';
    }
  } else if (body >= 0) {
    length = body;
    text += `content-length: ${body}\r\n`;
  } else {
    length = BODY_NONE;
    if (declared === 0 || EXPECTS_PAYLOAD.has(method)) text += 'content-length: 0\r\n';
  }
  if (upgrade !== undefined) text += `connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
  else text += 'connection: keep-alive\r\n\r\n';
  out.text = text;
  out.length = length;
}

/** What undici checked on every request: here only on heads a filter edited. */
function checkHead(method: string, target: string, fields: readonly string[]): void {
  if (!TOKEN_RE.test(method)) throw new H1Error('H1_INVALID_REQUEST', `invalid request method ${JSON.stringify(method)}`);
  if (!TARGET_RE.test(target) || (target[0] !== '/' && !/^https?:\/\//i.test(target))) {
    throw new H1Error('H1_INVALID_REQUEST', `invalid request target ${JSON.stringify(target)}`);
  }
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (typeof name !== 'string' || !TOKEN_RE.test(name)) throw new H1Error('H1_INVALID_REQUEST', `invalid field name ${JSON.stringify(name)}`);
    if (typeof value !== 'string' || BAD_VALUE_RE.test(value)) throw new H1Error('H1_INVALID_REQUEST', `invalid value of field ${name}`);
  }
}
