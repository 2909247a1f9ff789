// GET /certificates: every certificate usher serves — from files per TLS listener, and ACME's
// (served by every TLS listener) — with its SNI names, subject, issuer, validity and source.
// Parsed here, when asked, from the PEM usher holds: nothing of it is kept per handshake.
import { X509Certificate } from 'node:crypto';
import type { LoadedCertificate } from '../tls/certificate.js';

/** One certificate as a listener serves it (Usher.certificateInventory). */
export interface ServedCertificate {
  readonly cert: LoadedCertificate;
  /** The listener's address as configured. */
  readonly listener: string;
  /** The listener's default certificate (for clients without SNI, or names nothing else covers). */
  readonly isDefault: boolean;
  readonly source:
    | { readonly type: 'file'; readonly cert: string; readonly key: string }
    | { readonly type: 'acme'; readonly domain: string; readonly directory: string; readonly nextRenewal: Date; readonly failures: number };
}

/** An ACME domain with no certificate yet (its first order pending or failing). */
export interface PendingDomain {
  readonly domain: string;
  readonly directory: string;
  readonly nextRenewal: Date;
  readonly failures: number;
}

const DAY_MS = 86_400_000;

export function certificatesView(served: readonly ServedCertificate[], pending: readonly PendingDomain[], now = Date.now()): unknown {
  // One entry per certificate (by fingerprint), with every listener that serves it.
  const byPrint = new Map<string, { s: ServedCertificate; listeners: Set<string>; defaultOn: Set<string> }>();
  for (const s of served) {
    const key = `${s.source.type}|${s.cert.fingerprint}`;
    let e = byPrint.get(key);
    if (e === undefined) byPrint.set(key, (e = { s, listeners: new Set(), defaultOn: new Set() }));
    e.listeners.add(s.listener);
    if (s.isDefault) e.defaultOn.add(s.listener);
  }
  const certificates = [...byPrint.values()].map(({ s, listeners, defaultOn }) => {
    const x = new X509Certificate(s.cert.cert);
    const notAfter = new Date(x.validTo);
    const src = s.source;
    return {
      names: s.cert.names,
      subject: x.subject.replace(/\n/g, ', '),
      issuer: x.issuer.replace(/\n/g, ', '),
      serial: x.serialNumber,
      not_before: new Date(x.validFrom).toISOString(),
      not_after: notAfter.toISOString(),
      expires_in_days: Math.floor(((notAfter.getTime() - now) / DAY_MS) * 10) / 10,
      expired: notAfter.getTime() <= now,
      fingerprint_sha256: s.cert.fingerprint,
      key_type: s.cert.keyType,
      source:
        src.type === 'file'
          ? { type: 'file', cert: src.cert, key: src.key }
          : { type: 'acme', domain: src.domain, directory: src.directory, next_renewal: src.nextRenewal.toISOString(), renewal_failures: src.failures },
      listeners: [...listeners],
      default_on: [...defaultOn],
    };
  });
  certificates.sort((a, b) => a.not_after.localeCompare(b.not_after));
  return {
    certificates,
    acme_pending: pending.map((p) => ({ domain: p.domain, directory: p.directory, next_attempt: p.nextRenewal.toISOString(), failures: p.failures })),
  };
}
