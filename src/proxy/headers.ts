// Header processing for the terminal proxy stage: one pass over Node's raw header arrays in each
// direction, with no per-header object allocation. RFC 9110 §7.6.1 (Connection, hop-by-hop),
// RFC 7239 (Forwarded), RFC 9110 §7.6.3 (Via).

import type { BlockList } from 'node:net';
import { dict } from '../util/dict.js';

/** Settings compiled once per config (see server/runtime.ts). */
export interface ForwardSettings {
  /** Trusted proxies; null when none are configured (the common case: nothing to check). */
  readonly trusted: BlockList | null;
  /** "1.1 usher", or null to send no Via. */
  readonly via: string | null;
  /** "2 usher": the Via entry for a message usher received over HTTP/2 (RFC 9110 §7.6.3), or null. */
  readonly via2: string | null;
  readonly dropUnderscore: boolean;
  /** Lower case. */
  readonly requestIdHeader: string;
  /** Lower-case response header names to remove (Server, X-Powered-By by default). */
  readonly hideResponse: ReadonlySet<string>;
}

/** What the downstream request head told us, gathered in the same pass that builds the upstream head. */
export class RequestHead {
  host: string | undefined = undefined;
  hostCount = 0;
  contentLength: string | undefined = undefined;
  /** The Transfer-Encoding value(s), joined; usher forwards only plain "chunked". */
  transferEncoding: string | undefined = undefined;
  /** Incoming values, only looked at when the peer is a trusted proxy. */
  xff: string | undefined = undefined;
  xfp: string | undefined = undefined;
  xfh: string | undefined = undefined;
  forwarded: string | undefined = undefined;
  via: string | undefined = undefined;
  requestId: string | undefined = undefined;
  /** Field names listed in Connection that are not already hop-by-hop (rare). */
  connectionTokens: string[] | null = null;
}

const enum Kind {
  Keep,
  Drop, // hop-by-hop or replaced by usher
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  Xff,
  Xfp,
  Xfh,
  Forwarded,
  Via,
  XRealIp,
}

// Request fields that usher drops or re-creates. Anything else is forwarded as sent.
const REQUEST_KINDS: ReadonlyMap<string, Kind> = new Map([
  ['host', Kind.Host],
  ['content-length', Kind.ContentLength],
  ['transfer-encoding', Kind.TransferEncoding],
  ['connection', Kind.Connection],
  ['keep-alive', Kind.Drop],
  ['proxy-connection', Kind.Drop],
  ['te', Kind.Drop],
  ['trailer', Kind.Drop],
  ['upgrade', Kind.Drop],
  // usher answers Expect: 100-continue itself before it reads the body (see server/handler.ts).
  ['expect', Kind.Drop],
  ['x-forwarded-for', Kind.Xff],
  ['x-forwarded-proto', Kind.Xfp],
  ['x-forwarded-host', Kind.Xfh],
  ['forwarded', Kind.Forwarded],
  ['via', Kind.Via],
  ['x-real-ip', Kind.XRealIp],
]);

/** Hop-by-hop fields (RFC 9110 §7.6.1) plus the pre-standard Proxy-Connection. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/** Fields a Connection header may never remove: framing and the fields usher sets itself. */
const PROTECTED: ReadonlySet<string> = new Set(['host', 'content-length']);

/**
 * First pass: copy the downstream head to `out` (name, value, name, value...) minus hop-by-hop
 * and usher-owned fields, and record what usher needs in `head`. `requestIdHeader` is matched
 * here too so that the id is read without a second scan.
 */
export function scanRequestHeaders(raw: readonly string[], settings: ForwardSettings, head: RequestHead, out: string[]): void {
  const ridHeader = settings.requestIdHeader;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    const kind = REQUEST_KINDS.get(lower);
    if (kind === undefined) {
      if (lower === ridHeader) {
        head.requestId = value;
        continue;
      }
      if (settings.dropUnderscore && lower.includes('_')) continue;
      out.push(name, value);
      continue;
    }
    switch (kind) {
      case Kind.Host:
        head.host = value;
        head.hostCount++;
        break;
      case Kind.ContentLength:
        head.contentLength = value;
        out.push(name, value);
        break;
      case Kind.TransferEncoding:
        head.transferEncoding = head.transferEncoding === undefined ? value : `${head.transferEncoding}, ${value}`;
        break;
      case Kind.Connection:
        collectConnectionTokens(value, head);
        break;
      case Kind.Xff:
        head.xff = head.xff === undefined ? value : `${head.xff}, ${value}`;
        break;
      case Kind.Xfp:
        head.xfp ??= value;
        break;
      case Kind.Xfh:
        head.xfh ??= value;
        break;
      case Kind.Forwarded:
        head.forwarded = head.forwarded === undefined ? value : `${head.forwarded}, ${value}`;
        break;
      case Kind.Via:
        head.via = head.via === undefined ? value : `${head.via}, ${value}`;
        break;
      default:
        // Kind.Drop, Kind.XRealIp: re-created by usher or hop-by-hop.
        break;
    }
  }
  if (head.connectionTokens !== null) removeNamed(out, head.connectionTokens);
}

function collectConnectionTokens(value: string, head: RequestHead): void {
  // "keep-alive" and "close" are by far the most common values: nothing to collect.
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return;
  }
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || token === 'close' || HOP_BY_HOP.has(token) || PROTECTED.has(token)) continue;
    (head.connectionTokens ??= []).push(token);
  }
}

/** Removes fields named in a Connection header from a flat name/value array, in place. */
function removeNamed(out: string[], names: readonly string[]): void {
  let w = 0;
  for (let r = 0; r < out.length; r += 2) {
    if (names.includes(out[r]!.toLowerCase())) continue;
    out[w++] = out[r]!;
    out[w++] = out[r + 1]!;
  }
  out.length = w;
}

/**
 * Appends usher's forwarding headers to the upstream head `h`: Host, X-Forwarded-For/-Proto/
 * -Host, X-Real-IP, Forwarded (RFC 7239), Via (RFC 9110 §7.6.3) and the request id. Values the
 * client sent survive (extended) only when `head` kept them: a trusted proxy's. Returns the index
 * of the Host value in `h`.
 */
export function appendForwardingHeaders(
  h: string[],
  head: RequestHead,
  fwd: ForwardSettings,
  ip: string,
  proto: 'http' | 'https',
  viaHttp2: boolean,
  requestId: string,
): number {
  const host = head.host ?? '';
  const hostIndex = h.length + 1;
  h.push('host', host);
  h.push('x-forwarded-for', head.xff === undefined ? ip : `${head.xff}, ${ip}`);
  h.push('x-forwarded-proto', head.xfp ?? proto);
  if (host !== '' || head.xfh !== undefined) h.push('x-forwarded-host', head.xfh ?? host);
  h.push('x-real-ip', head.xff === undefined ? ip : realClientIp(head.xff, ip, fwd.trusted));
  const node = host === '' ? `for=${forwardedNode(ip)};proto=${proto}` : `for=${forwardedNode(ip)};host="${quoted(host)}";proto=${proto}`;
  h.push('forwarded', head.forwarded === undefined ? node : `${head.forwarded}, ${node}`);
  // The received protocol is the downstream's (RFC 9110 §7.6.3): "2 usher" for HTTP/2.
  const via = viaHttp2 ? fwd.via2 : fwd.via;
  if (via !== null) h.push('via', head.via === undefined ? via : `${head.via}, ${via}`);
  h.push(fwd.requestIdHeader, requestId);
  return hostIndex;
}

/** The index of the "host" value in an upstream head (usher's own is the only "host"), or -1. */
export function hostValueIndex(h: readonly string[]): number {
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'host') return i + 1;
  return -1;
}

/** RFC 9110 §5.6.4 quoted-string content: escape " and \. */
function quoted(value: string): string {
  return value.includes('"') || value.includes('\\') ? value.replace(/["\\]/g, '\\$&') : value;
}

/** X-Real-IP from a trusted chain: the right-most address that is not a trusted proxy. */
export function realClientIp(xff: string, peer: string, trusted: BlockList | null): string {
  if (trusted === null) return peer;
  const parts = xff.split(',');
  for (let i = parts.length - 1; i >= 0; i--) {
    const ip = parts[i]!.trim();
    if (ip === '') continue;
    if (!trusted.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4')) return ip;
  }
  return parts[0]!.trim() || peer;
}

/** Formats the `for=` node of RFC 7239 §6: IPv6 in brackets and quotes. */
export function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/**
 * Response pass: converts undici's Buffer pairs (the native client's are strings already) to strings for node:http, dropping hop-by-hop
 * fields, fields named by Connection, and hidden fields (Server, X-Powered-By).
 */
export function filterResponseHeaders(raw: readonly (Buffer | string)[], settings: ForwardSettings, out: string[]): void {
  let named: string[] | null = null;
  const hide = settings.hideResponse;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        const value = latin1(raw[i + 1]!);
        for (const part of value.split(',')) {
          const token = part.trim().toLowerCase();
          if (token && token !== 'close' && token !== 'keep-alive' && !PROTECTED.has(token)) (named ??= []).push(token);
        }
      }
      continue;
    }
    if (hide.has(lower) || lower === settings.requestIdHeader) continue;
    out.push(name, latin1(raw[i + 1]!));
  }
  if (named !== null) removeNamed(out, named);
}

/** Converts undici trailers (Buffer pairs, or an HTTP/2 header object) to the object `res.addTrailers` takes. */
export function trailersObject(raw: readonly (Buffer | string)[] | Record<string, string | string[] | undefined>): Record<string, string> {
  const obj = dict<string>(); // an upstream's trailer may be named "__proto__"
  if (!Array.isArray(raw)) {
    for (const [name, value] of Object.entries(raw)) {
      if (value !== undefined && name.charCodeAt(0) !== 58 /* : */) obj[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return obj;
  }
  const list = raw as readonly (Buffer | string)[];
  for (let i = 0; i < list.length; i += 2) {
    const name = latin1(list[i]!);
    const value = latin1(list[i + 1]!);
    obj[name] = obj[name] === undefined ? value : `${obj[name]}, ${value}`;
  }
  return obj;
}

function latin1(x: Buffer | string): string {
  return typeof x === 'string' ? x : x.toString('latin1');
}
