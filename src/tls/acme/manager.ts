// Automatic certificates (RFC 8555) with acme-client: for each configured domain, a stored
// certificate is served at once; a missing or soon-expiring one is ordered with HTTP-01
// (RFC 8555 §8.3, answered by plain listeners via edge.ts) or TLS-ALPN-01 (RFC 8737, answered
// by TLS listeners via listener-tls.ts), one order at a time across processes (the storage's
// lock: a lock file in a directory, store.ts, or a lock in Redis shared by several machines,
// redis-store.ts; with Redis, the pending challenges are shared too, so any instance answers).
// Failures are logged and retried with exponential backoff; serving never waits for ACME, and
// a storage that cannot be read or locked never leads to an order.
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type AcmeClientModule from 'acme-client';
import type { AcmeConfig } from '../config/types.js';
import { loadCertificate, type LoadedCertificate } from '../certificate.js';
import type { TlsLog } from '../listener-tls.js';
import type { CertSource } from '../source.js';
import { RedisAcmeStore } from './redis-store.js';
import type { AcmeStorage, PemPair } from './storage.js';
import { AcmeStore } from './store.js';

type AcmeLib = typeof AcmeClientModule;

/** What a worker process needs of the primary's ACME state (structured-cloneable). */
export interface AcmeSnapshot {
  certs: [string, { cert: string; key: string; names: string[] }][];
  http: [string, string][];
  alpn: [string, { cert: string; key: string; names: string[] }][];
  /** With a shared store: whether it answers (1) or not (0), for the workers' usher_acme_store_up. */
  storeUp?: number;
}
let acmeLib: Promise<AcmeLib> | undefined;
/**
 * acme-client (with axios and @peculiar/x509 under it, ~15 MB of heap) is loaded on the first
 * order, not at start: a proxy without `acme:` never pays for it.
 */
function loadAcme(): Promise<AcmeLib> {
  return (acmeLib ??= import('acme-client').then((m) => ((m as { default?: AcmeLib }).default ?? (m as unknown as AcmeLib))));
}

const DAY_MS = 86_400_000;

/**
 * The reason for a failed order, in words. acme-client 5.4 loses network errors: with no HTTP
 * response its axios interceptor fails with a TypeError reading `response.config`.
 */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof TypeError && message.includes("reading 'config'")) return 'no response from the ACME server (connection refused, reset or timed out)';
  return message;
}

interface DomainState {
  cert: LoadedCertificate | undefined;
  failures: number;
  /** When the next attempt may run (ms since epoch); 0: now. */
  notBefore: number;
}

export class AcmeManager implements CertSource {
  private config: AcmeConfig;
  private readonly log: TlsLog;
  private readonly store: AcmeStorage;
  /** Challenges another instance (sharing Redis) is answering: this one answers them too. */
  private sharedHttp = new Map<string, string>();
  private sharedAlpn = new Map<string, LoadedCertificate>();
  /** The account key once known (put back into a shared store that lost its data). */
  private accountKey: string | undefined;
  private storeWasDown = false;
  private readonly domains = new Map<string, DomainState>();
  private readonly httpTokens = new Map<string, string>();
  private readonly alpnCerts = new Map<string, LoadedCertificate>();
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private closed = false;
  private client: AcmeClientModule.Client | undefined;
  /** Orders started (for tests and, later, metrics). */
  orders = 0;
  /** Certificates obtained. */
  issued = 0;
  /** Completed passes over the domains. */
  checks = 0;

  constructor(config: AcmeConfig, log: TlsLog) {
    this.config = config;
    this.log = log;
    this.store = typeof config.storage === 'string' ? new AcmeStore(config.storage) : new RedisAcmeStore(config.storage.redis);
    for (const d of config.domains) this.domains.set(d, { cert: this.readSync(d), failures: 0, notBefore: 0 });
  }

  /** The directory's certificates are served from the start; Redis' are read by the first check. */
  private readSync(domain: string): LoadedCertificate | undefined {
    return this.store instanceof AcmeStore ? this.store.readCertificate(domain) : undefined;
  }

  /** Whether the shared store answers (1) or not (0); undefined with a directory. */
  get storeUp(): number | undefined {
    return this.store.reachable === undefined ? undefined : this.store.reachable ? 1 : 0;
  }

  private opened = false;

  /**
   * Connects a shared store and begins following the other instances (their certificates and
   * pending challenges), before this process or its workers accept connections: whatever the
   * CA sends to this instance once it listens, it already knows. Called by start() if not before.
   */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.store.start?.(
      {
        certificatesChanged: () => void this.reloadStored(),
        challenges: (http, alpn) => this.mirrorChallenges(http, alpn),
        reachable: (up) => {
          this.notify(); // workers' gauge
          if (!up) this.storeWasDown = true;
          else if (this.storeWasDown) {
            this.storeWasDown = false;
            void this.restoreShared();
            // Checks that were refused while it was down run now (not before start(): listeners first).
            if (this.started) this.schedule(0);
          }
        },
      },
      this.log,
    );
  }

  /** Begins checking (listeners must already accept connections: the CA calls back). */
  private started = false;

  start(): void {
    this.started = true;
    this.open();
    // From now on this instance answers challenges: it acknowledges them to the one ordering.
    this.store.serving?.();
    this.schedule(0);
  }

  /** Another instance stored a certificate: load the ones that changed. */
  private async reloadStored(): Promise<void> {
    let changed = false;
    for (const [domain, s] of this.domains) {
      let stored: LoadedCertificate | undefined;
      try {
        stored = await this.store.readCertificate(domain);
      } catch {
        return; // unreachable again: the next change or check reads it
      }
      if (stored === undefined || stored.fingerprint === s.cert?.fingerprint) continue;
      if (s.cert !== undefined && stored.notAfter.getTime() < s.cert.notAfter.getTime()) continue; // ours is newer
      s.cert = stored;
      s.failures = 0;
      s.notBefore = 0;
      changed = true;
      this.log.info({ domain, not_after: stored.notAfter.toISOString(), ...this.store.describe }, 'ACME: loaded the certificate another usher instance stored');
    }
    if (changed) this.notify();
  }

  /**
   * Redis came back, perhaps empty (restarted without persistence): the certificates and the
   * account this instance holds go back in (SET NX: one written meanwhile wins), so that an
   * instance starting next loads them instead of ordering.
   */
  private async restoreShared(): Promise<void> {
    const store = this.store;
    if (!(store instanceof RedisAcmeStore)) return;
    try {
      if (this.accountKey !== undefined) await store.writeAccountKey(this.accountKey);
      let restored = 0;
      for (const [domain, s] of this.domains) if (s.cert !== undefined && (await store.restoreCertificate(domain, s.cert.cert, s.cert.key))) restored++;
      if (restored > 0) this.log.info({ restored, ...store.describe }, 'ACME: the store had lost certificates this instance serves; put them back');
    } catch {
      // unreachable again: tried at the next reconnection
      this.storeWasDown = true;
    }
  }

  private async mirrorChallenges(http: Map<string, string>, alpn: Map<string, PemPair>): Promise<void> {
    const sameHttp = http.size === this.sharedHttp.size && [...http].every(([k, v]) => this.sharedHttp.get(k) === v);
    const sameAlpn = alpn.size === this.sharedAlpn.size && [...alpn].every(([k, v]) => this.sharedAlpn.get(k)?.cert === v.cert);
    if (sameHttp && sameAlpn) return;
    this.sharedHttp = http;
    const next = new Map<string, LoadedCertificate>();
    for (const [name, p] of alpn) {
      const had = this.sharedAlpn.get(name);
      try {
        next.set(name, had?.cert === p.cert ? had : loadCertificate(p.cert, p.key, p.names));
      } catch {
        // not a usable certificate: not answered
      }
    }
    this.sharedAlpn = next;
    await this.notifyChallenges();
  }

  /** A reload: new settings; domains added are checked at once. */
  update(config: AcmeConfig): void {
    if (config.directory !== this.config.directory || config.ca !== this.config.ca || config.email !== this.config.email) this.client = undefined;
    if (JSON.stringify(config.storage) !== JSON.stringify(this.config.storage)) this.log.warn({ ...this.store.describe }, 'a change of acme.storage takes effect at the next restart');
    this.config = { ...config, storage: this.config.storage };
    for (const d of config.domains) if (!this.domains.has(d)) this.domains.set(d, { cert: this.readSync(d), failures: 0, notBefore: 0 });
    for (const d of [...this.domains.keys()]) if (!config.domains.includes(d)) this.domains.delete(d);
    this.notify();
    this.schedule(0);
  }

  /** Stops the loop. An order under way (acme-client cannot abort one) gets a moment to finish. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.running !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.running, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
    await this.store.close?.();
  }

  // ---- CertSource ----------------------------------------------------------------------------

  certificate(name: string): LoadedCertificate | undefined {
    return this.domains.get(name)?.cert;
  }

  any(): LoadedCertificate | undefined {
    for (const s of this.domains.values()) if (s.cert !== undefined) return s.cert;
    return undefined;
  }

  /** Every domain: its certificate (none yet while the first order is pending), when it is renewed next, failed orders in a row. */
  domainStates(): { domain: string; cert: LoadedCertificate | undefined; nextRenewal: Date; failures: number }[] {
    return [...this.domains].map(([domain, s]) => {
      const due = s.cert === undefined ? Date.now() : s.cert.notAfter.getTime() - this.config.renew_before_days * DAY_MS;
      return { domain, cert: s.cert, nextRenewal: new Date(Math.max(due, s.notBefore)), failures: s.failures };
    });
  }

  get directory(): string {
    return this.config.directory;
  }

  alpnChallenge(name: string): LoadedCertificate | undefined {
    return this.alpnCerts.get(name) ?? this.sharedAlpn.get(name);
  }

  httpChallenge(token: string): string | undefined {
    return this.httpTokens.get(token) ?? this.sharedHttp.get(token);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ---- the loop ------------------------------------------------------------------------------

  private schedule(delay: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running ??= this.checkAll().finally(() => {
        this.running = null;
        this.schedule(this.nextDelay());
      });
    }, delay);
    this.timer.unref();
  }

  private nextDelay(): number {
    let next = this.config.check_interval;
    const now = Date.now();
    // A domain waiting to retry is checked when its wait is over (never sooner than 10ms: no busy loop).
    for (const s of this.domains.values()) if (s.failures > 0 && this.needsOrder(s)) next = Math.min(next, Math.max(10, s.notBefore - now));
    return next;
  }

  private needsOrder(s: DomainState): boolean {
    if (s.cert === undefined) return true;
    return s.cert.notAfter.getTime() - Date.now() < this.config.renew_before_days * DAY_MS;
  }

  private async checkAll(): Promise<void> {
    try {
      await this.checkDomains();
    } finally {
      this.checks++;
    }
  }

  private async checkDomains(): Promise<void> {
    for (const [domain, s] of this.domains) {
      if (this.closed) return;
      if (!this.needsOrder(s) || Date.now() < s.notBefore) continue;
      // Another process may have renewed it since we last looked. A storage that cannot be
      // read cannot say so: nothing is ordered until it can.
      let stored: LoadedCertificate | undefined;
      try {
        stored = await this.store.readCertificate(domain);
      } catch (err) {
        this.storeUnusable(domain, s, err);
        continue;
      }
      if (stored !== undefined && stored.fingerprint !== s.cert?.fingerprint) {
        s.cert = stored;
        this.notify();
        if (!this.needsOrder(s)) {
          s.failures = 0;
          s.notBefore = 0;
          continue;
        }
      }
      let locked: boolean;
      try {
        locked = await this.store.tryLock();
      } catch (err) {
        this.storeUnusable(domain, s, err);
        continue;
      }
      if (!locked) {
        this.log.info({ domain, ...this.store.describe }, 'ACME: another usher process holds the storage lock; checking again later');
        s.notBefore = Date.now() + this.config.retry.min;
        s.failures = Math.max(s.failures, 1);
        continue;
      }
      // An order can outlast the lock's life (slow CA, validation retries): keep it fresh. A
      // refresh that fails (taken over, or the store unreachable) stops the order before its
      // next challenge: it can no longer be sure to be the only one.
      const lock = { lost: false };
      const heartbeat = setInterval(() => {
        void Promise.resolve(this.store.touchLock()).then((held) => {
          if (held === false && !lock.lost) {
            lock.lost = true;
            this.log.warn({ domain, ...this.store.describe }, 'ACME: the order lock could not be refreshed; stopping this order');
          }
        });
      }, this.store.lockRefreshMs);
      heartbeat.unref();
      try {
        await this.order(domain, s, lock);
      } catch (err) {
        s.failures++;
        const wait = Math.min(this.config.retry.max, this.config.retry.min * 2 ** (s.failures - 1));
        s.notBefore = Date.now() + wait;
        this.log.error({ domain, attempt: s.failures, retry_in_ms: wait, directory: this.config.directory, err: { message: describe(err) } }, 'ACME: could not obtain a certificate; will retry');
      } finally {
        clearInterval(heartbeat);
        await this.store.unlock();
      }
    }
  }

  /** The storage cannot be read or locked: nothing is ordered; checked again after retry.min, doubling. */
  private storeUnusable(domain: string, s: DomainState, err: unknown): void {
    this.storeWasDown = true;
    s.failures++;
    const wait = Math.min(this.config.retry.max, this.config.retry.min * 2 ** (s.failures - 1));
    s.notBefore = Date.now() + wait;
    this.log.warn({ domain, retry_in_ms: wait, ...this.store.describe, err: { message: describe(err) } }, 'ACME: the storage cannot be read or locked; not ordering');
  }

  private async order(domain: string, s: DomainState, lock: { lost: boolean }): Promise<void> {
    this.orders++;
    const client = await this.acmeClient();
    const acme = await loadAcme();
    const renewing = s.cert !== undefined;
    this.log.info({ domain, renewing, challenges: this.config.challenges }, 'ACME: ordering a certificate');
    const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey());
    const chain = await client.auto({
      csr,
      email: this.config.email,
      termsOfServiceAgreed: true,
      challengePriority: this.config.challenges,
      // The CA reaches usher by the domain's DNS, which usher cannot check from inside.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (lock.lost) throw new Error('the order lock was lost (taken over, or the storage became unreachable)');
        if (challenge.type === 'http-01') {
          this.httpTokens.set(challenge.token, keyAuthorization);
          // Other instances sharing the store answer it too (the CA may reach any of them).
          await this.store.putChallenge?.('http', challenge.token, keyAuthorization);
        } else if ((challenge.type as string) === 'tls-alpn-01') {
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
          const name = authz.identifier.value;
          this.alpnCerts.set(name, loadCertificate(alpnCert.toString(), alpnKey.toString(), [name]));
          await this.store.putChallenge?.('alpn', name, { cert: alpnCert.toString(), key: alpnKey.toString(), names: [name] });
        }
        // Worker processes answer the challenge: they get it before the CA is told to look.
        await this.notifyChallenges();
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === 'http-01') {
          this.httpTokens.delete(challenge.token);
          await this.store.deleteChallenge?.('http', challenge.token);
        } else {
          this.alpnCerts.delete(authz.identifier.value);
          await this.store.deleteChallenge?.('alpn', authz.identifier.value);
        }
        this.notify();
      },
    });
    const cert = loadCertificate(chain, key.toString(), [domain]);
    s.cert = cert;
    try {
      await this.store.writeCertificate(domain, chain, key.toString());
    } catch (err) {
      // Served all the same; a shared store gets it back when it is reachable again (restoreShared).
      this.storeWasDown = true;
      this.log.error({ domain, ...this.store.describe, err: { message: describe(err) } }, 'ACME: the certificate was obtained but could not be stored');
    }
    s.failures = 0;
    s.notBefore = 0;
    this.issued++;
    this.log.info({ domain, not_after: cert.notAfter.toISOString(), renewed: renewing }, 'ACME: certificate obtained');
    this.notify();
  }

  private async acmeClient(): Promise<AcmeClientModule.Client> {
    if (this.client !== undefined) return this.client;
    const acme = await loadAcme();
    let accountKey = await this.store.readAccountKey();
    if (accountKey === undefined) {
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      // A shared store keeps the first key written: another instance's, if it was quicker.
      accountKey = (await this.store.writeAccountKey(accountKey)) ?? accountKey;
    }
    this.accountKey = accountKey;
    if (this.config.ca !== undefined) {
      // acme-client talks through its own axios instance: trust the private CA there only.
      acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: [...rootCertificates, readFileSync(this.config.ca, 'utf8')] });
    }
    // acme-client retries failed requests itself, up to 75 s per request with fixed delays;
    // usher's own backoff (acme.retry) governs instead, so every failure is logged and spaced.
    (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;
    const client = new acme.Client({ directoryUrl: this.config.directory, accountKey });
    try {
      await client.createAccount({ termsOfServiceAgreed: true, ...(this.config.email === undefined ? {} : { contact: [`mailto:${this.config.email}`] }) });
    } catch (err) {
      // RFC 8555 §7.3.1: a known key answers 200 with the account's URL; acme-client then sends
      // an update, which some CAs (Pebble) refuse when there is nothing to change. The account
      // exists either way once its URL is known.
      try {
        client.getAccountUrl();
      } catch {
        throw err;
      }
    }
    this.client = client;
    return client;
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }

  /** Set by a primary of worker processes: resolves once every worker holds the pending challenges. */
  challengesPublished: (() => Promise<void>) | null = null;

  private async notifyChallenges(): Promise<void> {
    this.notify();
    await this.challengesPublished?.();
  }

  /** Certificates and pending challenges as PEM text, for worker processes (remote.ts). */
  snapshot(): AcmeSnapshot {
    const pem = (c: LoadedCertificate) => ({ cert: c.cert, key: c.key, names: [...c.names] });
    const certs: [string, { cert: string; key: string; names: string[] }][] = [];
    for (const [d, s] of this.domains) if (s.cert !== undefined) certs.push([d, pem(s.cert)]);
    const http = new Map([...this.sharedHttp, ...this.httpTokens]);
    const alpn = new Map([...this.sharedAlpn, ...this.alpnCerts]);
    const out: AcmeSnapshot = { certs, http: [...http], alpn: [...alpn].map(([n, c]) => [n, pem(c)]) };
    if (this.storeUp !== undefined) out.storeUp = this.storeUp;
    return out;
  }
}
