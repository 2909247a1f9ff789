import type { LoadedCertificate } from './certificate.js';

/**
 * Certificates that come from elsewhere than the listener's own files: ACME (acme/manager.ts).
 * Listeners ask it during handshakes and HTTP-01 requests; it tells them when something changed.
 */
export interface CertSource {
  /** The certificate obtained for `name` (lower case), if any. */
  certificate(name: string): LoadedCertificate | undefined;
  /** Some certificate, for clients that send no SNI when the listener has no file of its own. */
  any(): LoadedCertificate | undefined;
  /** The TLS-ALPN-01 certificate (RFC 8737 §3) for `name` while its challenge is pending. */
  alpnChallenge(name: string): LoadedCertificate | undefined;
  /** The key authorization for an HTTP-01 token (RFC 8555 §8.3) while its challenge is pending. */
  httpChallenge(token: string): string | undefined;
  /** Calls `fn` whenever certificates change; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void;
}
