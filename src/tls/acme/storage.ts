// What the ACME manager needs of a storage: the account key, a certificate per domain, and an
// order lock. Two kinds: a directory (store.ts: one machine, a lock file) and Redis
// (redis-store.ts: several machines, a lock with a time to live, the pending challenges shared
// so that whichever instance the CA reaches answers them). The directory's methods are
// synchronous, Redis' return promises: the manager awaits either.
import type { LoadedCertificate } from '../certificate.js';

type Maybe<T> = T | Promise<T>;

export interface PemPair {
  cert: string;
  key: string;
  names: string[];
}

/** What a shared storage tells the manager. */
export interface SharedStorageEvents {
  /** Another instance stored a certificate: read them again. */
  certificatesChanged(): void;
  /** The challenges other instances are answering now; resolves once this instance (and its workers) answer them too. */
  challenges(http: Map<string, string>, alpn: Map<string, PemPair>): Promise<void>;
  /** The store became reachable (true) or unreachable (false). */
  reachable(up: boolean): void;
}

export interface AcmeStorage {
  /** Log fields naming the storage. */
  readonly describe: Record<string, unknown>;
  /** How often a holder must refresh its lock during an order. */
  readonly lockRefreshMs: number;
  readAccountKey(): Maybe<string | undefined>;
  /** Stores the account key; returns the one stored (a shared store keeps the first written). */
  writeAccountKey(pem: string): Maybe<string | void>;
  /** The stored certificate; undefined when none (or unusable). Rejects when the storage cannot be read. */
  readCertificate(domain: string): Maybe<LoadedCertificate | undefined>;
  writeCertificate(domain: string, cert: string, key: string): Maybe<void>;
  /** Takes the order lock; false when another holds it. Rejects (never true) when that cannot be confirmed. */
  tryLock(): Maybe<boolean>;
  /** Refreshes the lock; false when it is no longer this holder's (taken over, or the store is unreachable). */
  touchLock(): Maybe<boolean | void>;
  unlock(): Maybe<void>;

  // ---- shared storages only ----
  /** Connects and starts watching for other instances' certificates and challenges. */
  start?(events: SharedStorageEvents, log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void }): void;
  /** This instance's listeners accept connections: it may acknowledge challenges from now on. */
  serving?(): void;
  /** Publishes a pending challenge; resolves once every live instance answers it (or after a bound). */
  putChallenge?(kind: 'http' | 'alpn', id: string, value: string | PemPair): Promise<void>;
  deleteChallenge?(kind: 'http' | 'alpn', id: string): Promise<void>;
  readonly reachable?: boolean;
  close?(): Promise<void>;
}
