// `compress:` — gzip, brotli and zstd for proxied responses. The response phase decides (from
// the request's Accept-Encoding and Range, and the head's Content-Type, Content-Length,
// Content-Encoding and Cache-Control) and edits the head: Content-Encoding set,
// Content-Length dropped, a strong ETag weakened, Vary: Accept-Encoding added. The
// response_body phase then hands usher the zlib stream, which it pipes with backpressure; a
// text/event-stream is flushed after every chunk so no event waits. A route without `compress`
// gets no filter (and no response_body hook).
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { RouteConfig } from '../../config/types.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { stateKey, type Filter, type RequestContext, type ResponseHead } from '../../pipeline/types.js';
import type { Algorithm, CompressConfig } from './config.js';

/** zstd arrived in Node 22.15 / 23.8; @types/node 20 does not know it. */
interface ZstdZlib {
  createZstdCompress?(options: { params?: Record<number, number>; flush?: number }): Transform;
}
const zstdZlib = zlib as unknown as ZstdZlib;
const zc = zlib.constants as unknown as Record<string, number>;
/** Whether the running Node can zstd (feature-detected, never assumed). */
export const ZSTD_AVAILABLE = typeof zstdZlib.createZstdCompress === 'function' && zc.ZSTD_c_compressionLevel !== undefined;

interface Choice {
  alg: Algorithm;
  sse: boolean;
  length: number;
}
const kChoice = stateKey<Choice>('compress.choice');

/** The q-value of each coding in an Accept-Encoding value (RFC 9110 §12.5.3), lower-case; "*" too. */
export function parseAcceptEncoding(value: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const element of value.split(',')) {
    const parts = element.split(';');
    let coding = parts[0]!.trim().toLowerCase();
    if (coding === '') continue;
    if (coding === 'x-gzip') coding = 'gzip'; // RFC 9110 §8.4.1.3
    let q = 1;
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i]!.trim();
      if (p.length < 2 || (p[0] !== 'q' && p[0] !== 'Q') || p[1] !== '=') continue;
      const v = p.slice(2).trim();
      q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v) ? Number(v) : NaN;
    }
    if (Number.isNaN(q)) continue; // a malformed weight: the element is ignored
    // The first element for a coding counts (a repeat is a client bug).
    if (!out.has(coding)) out.set(coding, q);
  }
  return out;
}

/**
 * The coding to use, or null for none. Among the server's codings the client's highest q wins,
 * ties in the server's order; none wins when the client lists identity with a higher q. `identityRefused`:
 * identity;q=0, or *;q=0 with no entry for identity.
 */
export function chooseEncoding(accept: Map<string, number>, algorithms: readonly Algorithm[]): { alg: Algorithm | null; identityRefused: boolean } {
  const star = accept.get('*');
  const identityListed = accept.get('identity');
  const identityQ = identityListed ?? (star === 0 ? 0 : 1);
  let best: Algorithm | null = null;
  let bestQ = 0;
  for (const alg of algorithms) {
    if (alg === 'zstd' && !ZSTD_AVAILABLE) continue;
    const q = accept.get(alg) ?? star ?? 0;
    if (q > bestQ) {
      best = alg;
      bestQ = q;
    }
  }
  // Only an identity the client weighed itself competes (an implicit one is merely acceptable).
  if (best !== null && identityListed !== undefined && identityListed > bestQ) best = null;
  return { alg: best, identityRefused: identityQ === 0 };
}

function findField(h: readonly string[], name: string): number {
  for (let i = 0; i < h.length; i += 2) if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) return i;
  return -1;
}

function joined(h: readonly string[], name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < h.length; i += 2) if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) out = out === undefined ? h[i + 1]! : `${out}, ${h[i + 1]!}`;
  return out;
}

function removeAll(h: string[], name: string): void {
  for (let i = h.length - 2; i >= 0; i -= 2) if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) h.splice(i, 2);
}

function noTransform(cacheControl: string | undefined): boolean {
  return cacheControl !== undefined && /(^|,)\s*no-transform\s*(,|$|=)/i.test(cacheControl);
}

/** Vary: Accept-Encoding, unless Vary already names it (or is "*"). */
function addVary(h: string[]): void {
  const vary = joined(h, 'vary');
  if (vary === undefined) return void h.push('vary', 'Accept-Encoding');
  const names = vary.split(',').map((v) => v.trim().toLowerCase());
  if (names.includes('*') || names.includes('accept-encoding')) return;
  h.push('vary', 'Accept-Encoding');
}

/** A strong ETag becomes weak: the encoded bytes differ from the identity ones (RFC 9110 §8.8.1). */
function weakenEtag(h: string[]): void {
  const i = findField(h, 'etag');
  if (i >= 0 && h[i + 1]!.startsWith('"')) h[i + 1] = `W/${h[i + 1]!}`;
}

export class Compress implements Filter {
  readonly name = 'compress';
  private readonly exact: ReadonlySet<string>;
  private readonly prefixes: readonly string[];
  private readonly any: boolean;

  constructor(readonly config: CompressConfig) {
    this.any = config.types.includes('*');
    this.exact = new Set(config.types.filter((t) => !t.endsWith('/*') && t !== '*'));
    this.prefixes = config.types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
  }

  private compressible(type: string): boolean {
    if (type === 'text/event-stream' && this.config.event_stream === 'off') return false;
    if (this.any || this.exact.has(type)) return true;
    for (const p of this.prefixes) if (type.startsWith(p)) return true;
    return false;
  }

  response(ctx: RequestContext, head: ResponseHead): void {
    const status = head.status;
    // Local replies are not offered to response_body; 206 is a range of the identity bytes.
    if (head.local || status < 200 || status === 204 || status === 206) return;
    if (ctx.header('range') !== undefined) return;
    const h = head.headers;
    const encoding = joined(h, 'content-encoding');
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity' && encoding.trim() !== '') return; // never twice
    if (noTransform(joined(h, 'cache-control')) || noTransform(ctx.header('cache-control'))) return;
    const accept = ctx.header('accept-encoding');
    if (status === 304) {
      // The 304 stands for the 200 the client holds: its Vary and (maybe weakened) ETag match it.
      addVary(h);
      if (accept !== undefined && chooseEncoding(parseAcceptEncoding(accept), this.config.algorithms).alg !== null) weakenEtag(h);
      return;
    }
    const ct = joined(h, 'content-type');
    if (ct === undefined) return;
    const semi = ct.indexOf(';');
    const type = (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
    if (!this.compressible(type)) return;
    // From here the representation depends on Accept-Encoding, compressed or not (as nginx's gzip_vary).
    addVary(h);
    if (accept === undefined) return; // no header: sent as is (nginx, Caddy)
    const choice = chooseEncoding(parseAcceptEncoding(accept), this.config.algorithms);
    if (choice.alg === null) return;
    const cl = joined(h, 'content-length');
    const length = cl === undefined ? -1 : Number(cl);
    if (length === 0) return;
    if (length > 0 && length < this.config.min_size && !choice.identityRefused) return;
    removeAll(h, 'content-encoding');
    removeAll(h, 'content-length');
    h.push('content-encoding', choice.alg);
    weakenEtag(h);
    // HEAD gets the head a GET would (RFC 9110 §9.3.2), and no body to compress.
    if (ctx.method !== 'HEAD') ctx.set(kChoice, { alg: choice.alg, sse: type === 'text/event-stream', length });
  }

  responseBody(ctx: RequestContext): Transform | undefined {
    const c = ctx.get(kChoice);
    if (c === undefined) return undefined;
    const cfg = this.config;
    switch (c.alg) {
      case 'gzip':
        return zlib.createGzip({ level: cfg.gzip_level, flush: c.sse ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.Z_NO_FLUSH });
      case 'br': {
        const params: Record<number, number> = {
          [zlib.constants.BROTLI_PARAM_QUALITY]: cfg.br_level,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        };
        if (c.length > 0) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = c.length;
        return zlib.createBrotliCompress({ params, flush: c.sse ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.BROTLI_OPERATION_PROCESS });
      }
      case 'zstd':
        return zstdZlib.createZstdCompress!({ params: { [zc.ZSTD_c_compressionLevel!]: cfg.zstd_level }, flush: c.sse ? zc.ZSTD_e_flush! : zc.ZSTD_e_continue! });
    }
  }

  explain(): string {
    const c = this.config;
    const algs = c.algorithms.map((a) => (a === 'zstd' && !ZSTD_AVAILABLE ? 'zstd (not in this Node)' : a)).join(', ');
    return `compress (${algs}; gzip ${c.gzip_level}, br ${c.br_level}, zstd ${c.zstd_level}; from ${c.min_size} bytes; ${c.types.length} types; event streams: ${c.event_stream})`;
  }
}

export const compress: RouteFilterDefinition = {
  name: 'compress',
  create: (rc: RouteConfig) => (rc.compress === undefined ? undefined : new Compress(rc.compress)),
};
