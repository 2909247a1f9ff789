// Semantic checks for the protocol options (HTTP/2, gRPC upstreams, upgrades): what the schema
// cannot express because it depends on another field. Called from check.ts; reads defensively.
import type { Segment } from './issues.js';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);
type ErrorFn = (path: Segment[], message: string, hint?: string, at?: 'key' | 'value') => void;

export function checkProtocols(data: Rec, error: ErrorFn): void {
  const upstreams = isRec(data.upstreams) ? data.upstreams : {};
  for (const [name, up] of Object.entries(upstreams)) {
    if (!isRec(up) || (up.protocol !== 'h2' && up.protocol !== 'h2c') || !Array.isArray(up.servers)) continue;
    // h2 is chosen by ALPN inside TLS; h2c is prior knowledge over plain TCP (RFC 9113 §3.3).
    const want = up.protocol === 'h2' ? 'https:' : 'http:';
    up.servers.forEach((server: unknown, j) => {
      const url = typeof server === 'string' ? server : isRec(server) && typeof server.url === 'string' ? server.url : undefined;
      if (url === undefined || !/^[a-z][a-z0-9+.-]*:/i.test(url)) return;
      const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
      if (scheme === want || (scheme !== 'http:' && scheme !== 'https:')) return;
      const path: Segment[] = typeof server === 'string' ? ['upstreams', name, 'servers', j] : ['upstreams', name, 'servers', j, 'url'];
      error(
        path,
        `protocol ${up.protocol} needs ${want}// servers, got ${JSON.stringify(url)}`,
        up.protocol === 'h2' ? 'use protocol: h2c for cleartext HTTP/2' : 'use protocol: h2 for HTTP/2 over TLS',
      );
    });
  }
  if (isRec(data.upgrade) && Array.isArray(data.upgrade.protocols)) {
    data.upgrade.protocols.forEach((p: unknown, i) => {
      // An h2c upgrade through a proxy hands the client a raw HTTP/2 connection to the upstream,
      // past every route and filter ("h2c smuggling"); usher speaks h2c itself instead.
      if (typeof p === 'string' && p.toLowerCase() === 'h2c') {
        error(['upgrade', 'protocols', i], 'h2c upgrades cannot be allowed: they would tunnel HTTP/2 past routing', 'enable http2 on the listener for h2c');
      }
    });
  }
}
