// mTLS identity headers: what usher verified about the client certificate, sent upstream.
// A client must never be able to forge them, so every request on every listener first loses
// any header with the prefix, and only a verified certificate adds them back.
import type { IncomingHttpHeaders } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export const CLIENT_CERT_PREFIX = 'x-client-cert-';
const kIdentity = Symbol('usher.clientIdentity');
type IdentitySocket = TLSSocket & { [kIdentity]?: readonly string[] };

const NONE: readonly string[] = Object.freeze([]);

/**
 * True for `X-Client-Cert-*` in any case, and for spellings with `_` for `-`: CGI-style upstreams
 * (PHP, WSGI, nginx's $http_*) map both `X_Client_Cert_Subject` and `X-Client-Cert-Subject` to
 * HTTP_X_CLIENT_CERT_SUBJECT, so the underscore form is a forgery too when
 * `drop_underscore_headers` is off.
 */
export function isClientCertHeader(name: string): boolean {
  const n = CLIENT_CERT_PREFIX.length;
  // Cheap pre-check: most names are shorter or do not start with x/X.
  if (name.length <= n || (name.charCodeAt(0) | 0x20) !== 0x78) return false;
  for (let i = 1; i < n; i++) {
    const c = name.charCodeAt(i);
    const want = CLIENT_CERT_PREFIX.charCodeAt(i);
    if (want === 0x2d ? c !== 0x2d && c !== 0x5f : (c | 0x20) !== want) return false;
  }
  return true;
}

/** Removes every `X-Client-Cert-*` field from Node's flat raw header array, in place; true if any was there. */
export function stripClientCertHeaders(raw: string[]): boolean {
  let w = 0;
  for (let r = 0; r < raw.length; r += 2) {
    const name = raw[r]!;
    if (isClientCertHeader(name)) continue;
    if (w !== r) {
      raw[w] = name;
      raw[w + 1] = raw[r + 1]!;
    }
    w += 2;
  }
  if (w === raw.length) return false;
  raw.length = w;
  return true;
}

/**
 * The one step every downstream request goes through before routing, whatever the protocol
 * (HTTP/1.x here; the HTTP/2 path must call it too): forged `X-Client-Cert-*` removed from both
 * views of the head, and, when `socket` is a listener with client_auth, the verified identity
 * added. Node builds req.headers from rawHeaders once (already done, to look for Expect) and
 * caches it, so both are edited and no later stage can read a forged value.
 */
export function applyClientIdentity(req: { rawHeaders: string[]; headers: IncomingHttpHeaders }, socket: TLSSocket | undefined): void {
  const raw = req.rawHeaders;
  const headers = req.headers;
  if (stripClientCertHeaders(raw)) {
    for (const name of Object.keys(headers)) if (isClientCertHeader(name)) delete headers[name];
  }
  if (socket === undefined) return;
  const identity = clientIdentityHeaders(socket);
  for (let i = 0; i < identity.length; i += 2) {
    raw.push(identity[i]!, identity[i + 1]!);
    headers[identity[i]!] = identity[i + 1]!;
  }
}

/** The identity headers of a TLS connection (flat pairs), computed once per connection. */
export function clientIdentityHeaders(socket: TLSSocket): readonly string[] {
  const s = socket as IdentitySocket;
  let h = s[kIdentity];
  if (h === undefined) s[kIdentity] = h = computeIdentity(socket);
  return h;
}

function computeIdentity(socket: TLSSocket): readonly string[] {
  // authorized: the chain verified against client_auth.ca (request mode lets others through).
  if (!socket.authorized) return NONE;
  const cert = socket.getPeerCertificate(false);
  if (cert === null || cert === undefined || Object.keys(cert).length === 0) return NONE;
  const out = [
    'x-client-cert-subject', dn(cert.subject),
    'x-client-cert-issuer', dn(cert.issuer),
    'x-client-cert-serial', cert.serialNumber,
    'x-client-cert-fingerprint', cert.fingerprint256.replaceAll(':', '').toLowerCase(),
  ];
  if (cert.subjectaltname) out.push('x-client-cert-san', safe(cert.subjectaltname));
  return Object.freeze(out);
}

/** RFC 4514-style "CN=alice,O=Example"; multi-valued attributes repeat. */
function dn(name: PeerCertificate['subject'] | undefined): string {
  if (name === undefined || name === null) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(name)) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${String(one).replace(/[,+"\\<>;=]/g, '\\$&')}`);
  }
  return safe(parts.join(','));
}

/** Header values may not hold control characters; certificate fields may (RFC 9110 §5.5). */
function safe(v: string): string {
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
