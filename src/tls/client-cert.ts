// mTLS identity headers: what usher verified about the client certificate, sent upstream.
// A client must never be able to forge them, so every request on every listener first loses
// any header with the prefix, and only a verified certificate adds them back.
import type { PeerCertificate, TLSSocket } from 'node:tls';

export const CLIENT_CERT_PREFIX = 'x-client-cert-';
const kIdentity = Symbol('usher.clientIdentity');
type IdentitySocket = TLSSocket & { [kIdentity]?: readonly string[] };

const NONE: readonly string[] = Object.freeze([]);

/** Removes every `X-Client-Cert-*` field from Node's flat raw header array, in place; true if any was there. */
export function stripClientCertHeaders(raw: string[]): boolean {
  let w = 0;
  for (let r = 0; r < raw.length; r += 2) {
    const name = raw[r]!;
    // Cheap pre-check: most names are shorter or do not start with x/X.
    if (name.length > CLIENT_CERT_PREFIX.length && (name.charCodeAt(0) | 0x20) === 0x78 && name.toLowerCase().startsWith(CLIENT_CERT_PREFIX)) continue;
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
