// One certificate loaded from PEM: its key, the names it answers for (SNI) and its expiry.
import { X509Certificate } from 'node:crypto';

export interface LoadedCertificate {
  readonly cert: string;
  readonly key: string;
  /** Lower-cased names, "*.example.com" for wildcards. */
  readonly names: readonly string[];
  readonly notAfter: Date;
  readonly fingerprint: string;
  /** "rsa", "ec", ... (key-types.ts: SNI beside a default of another type). */
  readonly keyType: string;
}

/** Parses a PEM chain + key. `names` empty: the DNS names of the subjectAltName (RFC 6125 §6.4.4: the CN only without SANs). */
export function loadCertificate(cert: string, key: string, names: readonly string[] = []): LoadedCertificate {
  const x = new X509Certificate(cert);
  const found = names.length > 0 ? names : certificateNames(x);
  return Object.freeze({ cert, key, names: Object.freeze([...found]), notAfter: new Date(x.validTo), fingerprint: x.fingerprint256,
    keyType: x.publicKey.asymmetricKeyType ?? 'unknown' });
}

export function certificateNames(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  if (san !== undefined) {
    const dns = san
      .split(', ')
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4).toLowerCase());
    if (dns.length > 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/**
 * The entry for `servername` in a map of names: the exact name, else the wildcard one label up
 * ("a.example.com" → "*.example.com"; a wildcard covers exactly one label, RFC 6125 §6.4.3).
 */
export function lookupName<T>(map: ReadonlyMap<string, T>, servername: string): T | undefined {
  const name = servername.toLowerCase();
  const exact = map.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? map.get(`*${name.slice(dot)}`) : undefined;
}
