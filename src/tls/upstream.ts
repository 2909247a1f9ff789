// TLS to upstream servers: the connect options for an https:// server's undici Pool, and which
// upstream errors are TLS failures (→ upstream_tls_failed).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { ServerConfig, UpstreamConfig } from '../config/types.js';

export interface UpstreamTlsOptions {
  rejectUnauthorized: boolean;
  ca?: string;
  servername?: string;
  cert?: string;
  key?: string;
}

/**
 * undici `connect` options for one server (files are read once, when the pool is built). Plain
 * http:// servers get none. Verification is on unless insecure_skip_verify; without `ca`, Node's
 * bundled roots (and NODE_EXTRA_CA_CERTS) are used.
 */
export function upstreamTlsOptions(server: ServerConfig, upstream: UpstreamConfig): UpstreamTlsOptions | undefined {
  if (!server.origin.startsWith('https:')) return undefined;
  const t = upstream.tls;
  const out: UpstreamTlsOptions = { rejectUnauthorized: t?.insecure_skip_verify !== true };
  const name = upstreamServername(server, upstream);
  if (name !== undefined) out.servername = name;
  if (t === undefined) return out;
  if (t.ca !== undefined) out.ca = readFileSync(t.ca, 'utf8');
  if (t.cert !== undefined && t.key !== undefined) {
    out.cert = readFileSync(t.cert, 'utf8');
    out.key = readFileSync(t.key, 'utf8');
  }
  return out;
}

/**
 * The name sent as SNI and checked against the upstream's certificate: tls.servername, else the
 * server URL's host name; undefined for an IP address (no SNI, RFC 6066 §3; verified as an IP).
 * Never the client's Host: undici derives it from the request's Host header unless told.
 */
export function upstreamServername(server: ServerConfig, upstream: UpstreamConfig): string | undefined {
  if (upstream.tls?.servername !== undefined) return upstream.tls.servername;
  // The authority, not the origin: a server found by DNS discovery has an IP origin but keeps the
  // configured name as its authority, and that name is what its certificate carries.
  const host = new URL(`https://${server.authority}`).hostname;
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  return isIP(bare) === 0 ? host : undefined;
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * The undici Pool `connect` option of a server. For https: a connector that always uses the
 * server's own name: undici passes each connection the servername of the request that opened
 * it, which it takes from the Host header (lib/core/request.js) — with `host_header: preserve`
 * the client would choose the name usher verifies.
 */
export function upstreamConnect(server: ServerConfig, upstream: UpstreamConfig): Connector | { timeout: number } {
  const timeout = upstream.timeouts.connect;
  const tls = upstreamTlsOptions(server, upstream);
  if (tls === undefined) return { timeout };
  // A connector of our own replaces undici's, so ALPN h2 (protocol: h2) is asked for here.
  const base = buildConnector({ timeout, ...tls, ...(upstream.protocol === 'h2' ? { allowH2: true } : {}) });
  const servername = tls.servername;
  return (options, callback) => base({ ...options, servername }, callback);
}

/** OpenSSL verification results (X509_V_ERR_* names as Node reports them) and Node's own. */
const VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
]);

/** A failed TLS handshake or certificate check with an upstream server. */
export function isUpstreamTlsError(code: unknown): boolean {
  if (typeof code !== 'string') return false;
  // ERR_SSL_*: handshake failures and alerts (e.g. the server wants a client certificate).
  return VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_');
}

/** The loud warning for upstreams that skip certificate verification, once per load. */
export function warnInsecureUpstreams(upstreams: Readonly<Record<string, UpstreamConfig>>, log: { warn(obj: object, msg: string): void }): void {
  for (const u of Object.values(upstreams)) {
    if (u.tls?.insecure_skip_verify === true && u.servers.some((s) => s.origin.startsWith('https:'))) {
      log.warn({ upstream: u.name }, `INSECURE: TLS certificate verification is off for upstream "${u.name}" (tls.insecure_skip_verify)`);
    }
  }
}
