// The certificates of a worker process: what the primary's AcmeManager obtained, and its pending
// challenges, as snapshots sent over IPC (src/server/workers/). Orders happen once, in the
// primary; every worker serves the result and answers the challenges (HTTP-01 on plain
// listeners, TLS-ALPN-01 on TLS ones), whichever worker the CA's connection reaches.
import { loadCertificate, type LoadedCertificate } from '../certificate.js';
import type { CertSource } from '../source.js';
import type { AcmeSnapshot } from './manager.js';

export class RemoteCertSource implements CertSource {
  private certs = new Map<string, LoadedCertificate>();
  private http = new Map<string, string>();
  private alpn = new Map<string, LoadedCertificate>();
  private readonly listeners = new Set<() => void>();
  /** PEM → loaded, so a snapshot that repeats a certificate does not parse it again. */
  private loaded = new Map<string, LoadedCertificate>();
  /** The primary's shared ACME store: reachable (1) or not (0); undefined without one. */
  storeUp: number | undefined;

  update(s: AcmeSnapshot): void {
    const seen = new Map<string, LoadedCertificate>();
    const load = (p: { cert: string; key: string; names: string[] }): LoadedCertificate => {
      const c = this.loaded.get(p.cert) ?? loadCertificate(p.cert, p.key, p.names);
      seen.set(p.cert, c);
      return c;
    };
    this.certs = new Map(s.certs.map(([d, p]) => [d, load(p)]));
    this.alpn = new Map(s.alpn.map(([n, p]) => [n, load(p)]));
    this.http = new Map(s.http);
    this.loaded = seen;
    this.storeUp = s.storeUp;
    for (const fn of this.listeners) fn();
  }

  /** The certificates the primary obtained, each once (the expiry metric). */
  obtained(): LoadedCertificate[] {
    return [...new Set(this.certs.values())];
  }

  certificate(name: string): LoadedCertificate | undefined {
    return this.certs.get(name);
  }

  any(): LoadedCertificate | undefined {
    for (const c of this.certs.values()) return c;
    return undefined;
  }

  alpnChallenge(name: string): LoadedCertificate | undefined {
    return this.alpn.get(name);
  }

  httpChallenge(token: string): string | undefined {
    return this.http.get(token);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
