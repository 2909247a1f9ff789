// TLS for one listener, with no HTTP routing knowledge: certificates by SNI (files and ACME),
// file reload, versions and ciphers, session tickets with key rotation, client certificates.
// serverOptions() gives the options for https.createServer / http2.createSecureServer; attach()
// hands it the server so that updates reach new handshakes (open connections keep their keys).
import { constants, randomBytes } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createSecureContext, type SecureContext, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { CertificateFiles, ListenerTlsConfig } from './config/types.js';
import { loadCertificate, lookupName, type LoadedCertificate } from './certificate.js';
import { mixedKeyTypeProblem, preferOtherThan } from './key-types.js';
import type { CertSource } from './source.js';

/** ALPN id of TLS-ALPN-01 validation connections (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = 'acme-tls/1';
const kAcmeAlpn = Symbol('usher.acmeAlpn');

export interface TlsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface FileSet {
  byName: Map<string, LoadedCertificate>;
  default: LoadedCertificate | undefined;
  /** The files each certificate was read from (for GET /certificates). */
  files: Map<LoadedCertificate, CertificateFiles>;
  /** client_auth.ca, read with the certificates. */
  ca: string | undefined;
}

export class ListenerTls {
  config: ListenerTlsConfig;
  private files: FileSet;
  private readonly source: CertSource | undefined;
  private readonly log: TlsLog;
  private contexts = new WeakMap<LoadedCertificate, SecureContext>();
  private server: TlsServer | undefined;
  private alpn: readonly string[] = ['http/1.1'];
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private ticketTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private currentDefault: LoadedCertificate | undefined;

  /** Throws when a certificate file cannot be loaded (the config check reports it first). */
  constructor(config: ListenerTlsConfig, source: CertSource | undefined, log: TlsLog) {
    this.config = config;
    this.source = source;
    this.log = log;
    this.files = loadFiles(config);
    this.watchFiles();
    this.unsubscribe = source?.subscribe(() => this.refreshDefault());
  }

  /** The certificates loaded from files (for the admin API and the expiry metric). */
  certificates(): readonly LoadedCertificate[] {
    const all = new Set(this.files.byName.values());
    if (this.files.default !== undefined) all.add(this.files.default);
    return [...all];
  }

  /** The files a certificate of certificates() came from, and whether it is the default (no SNI). */
  fileOf(cert: LoadedCertificate): { files: CertificateFiles | undefined; isDefault: boolean } {
    return { files: this.files.files.get(cert), isDefault: this.files.default === cert };
  }

  /** Whether this listener also serves the ACME certificates. */
  get acme(): boolean {
    return this.source !== undefined;
  }

  /** Options for the secure server. `alpn`: protocols in preference order (HTTP/2 adds "h2"). */
  serverOptions(alpn: readonly string[] = ['http/1.1']): TlsOptions {
    this.alpn = alpn;
    // The callbacks need their own `this` (the socket), so the listener is reached by name.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      ...this.defaultContextOptions(this.defaultCertificate()),
      requestCert: this.config.client_auth !== null,
      rejectUnauthorized: this.config.client_auth?.mode === 'require',
      // Node calls these as methods of the TLSSocket being handshaken (lib/_tls_wrap.js): the
      // ALPN choice (made first in TLS 1.3) is remembered on the socket for the SNI choice.
      SNICallback(this: unknown, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
        // Runs inside the handshake: a throw here would be an uncaught exception. A certificate
        // that cannot become a context fails this handshake only.
        let ctx: SecureContext | undefined;
        try {
          ctx = self.contextFor(servername, this);
        } catch (err) {
          cb(err as Error);
          return;
        }
        cb(null, ctx);
      },
      ALPNCallback(this: unknown, info: { servername: string; protocols: string[] }) {
        return self.selectAlpn(info.servername, info.protocols, this);
      },
    };
  }

  /** Starts what needs the server: ticket key rotation. */
  attach(server: TlsServer): void {
    this.server = server;
    this.currentDefault = this.defaultCertificate();
    if (this.config.session_tickets) this.startTicketRotation();
  }

  /** A reload: new settings and a fresh read of every file. Throws (keeping the old state) if a file is bad. */
  update(config: ListenerTlsConfig): void {
    const files = loadFiles(config);
    // Contexts carry the CA and settings: build new ones.
    this.contexts = new WeakMap();
    const rotationChanged = config.ticket_key_rotation !== this.config.ticket_key_rotation || config.session_tickets !== this.config.session_tickets;
    this.config = config;
    this.files = files;
    this.watchFiles();
    if (this.server !== undefined) {
      const srv = this.server as TlsServer & { requestCert: boolean; rejectUnauthorized: boolean };
      // Read per connection by Node's tls.Server (tlsConnectionListener).
      srv.requestCert = config.client_auth !== null;
      srv.rejectUnauthorized = config.client_auth?.mode === 'require';
      if (rotationChanged) {
        clearInterval(this.ticketTimer);
        if (config.session_tickets) this.startTicketRotation();
      }
    }
    this.refreshDefault(true);
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearTimeout(this.reloadTimer);
    clearInterval(this.ticketTimer);
    this.unsubscribe?.();
  }

  // ---- handshake -------------------------------------------------------------------------------

  private contextFor(servername: string, socket: unknown): SecureContext | undefined {
    const name = sniName(servername);
    if (this.source !== undefined && isAcmeAlpn(socket)) {
      const challenge = this.source.alpnChallenge(name);
      if (challenge !== undefined) return this.context(challenge);
    }
    const exact = this.files.byName.get(name) ?? this.source?.certificate(name);
    const cert = exact ?? lookupName(this.files.byName, name);
    // No match: undefined keeps the server's default context (the default certificate).
    return cert === undefined ? undefined : this.context(cert);
  }

  private selectAlpn(servername: string, offered: readonly string[], socket: unknown): string | undefined {
    if (offered.includes(ACME_TLS_ALPN) && this.source?.alpnChallenge(sniName(servername)) !== undefined) {
      if (socket !== null && typeof socket === 'object') (socket as Record<symbol, boolean>)[kAcmeAlpn] = true;
      return ACME_TLS_ALPN;
    }
    for (const p of this.alpn) if (offered.includes(p)) return p;
    // RFC 7301 §3.2: no protocol in common → no_application_protocol alert.
    return undefined;
  }

  private context(cert: LoadedCertificate): SecureContext {
    let ctx = this.contexts.get(cert);
    if (ctx === undefined) {
      ctx = createSecureContext(this.contextOptions(cert));
      this.contexts.set(cert, ctx);
    }
    return ctx;
  }

  private contextOptions(cert: LoadedCertificate | undefined): TlsOptions {
    const c = this.config;
    const options: TlsOptions = {
      minVersion: c.min_version,
      ciphers: c.ciphers,
      // The server's order, not the client's, picks the suite (the list is ordered by strength).
      honorCipherOrder: true,
      // No TLS 1.2 renegotiation: Node allows a client 3 per 10 minutes (tls.CLIENT_RENEG_LIMIT),
      // each a full handshake of server CPU, and the client certificate could change under an
      // identity already computed for the connection (client-cert.ts). TLS 1.3 has none.
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION | (c.session_tickets ? 0 : constants.SSL_OP_NO_TICKET),
    };
    if (cert !== undefined) {
      options.cert = cert.cert;
      options.key = cert.key;
    }
    // Every context verifies clients: after SNI the handshake uses the chosen context's store.
    if (this.files.ca !== undefined) options.ca = this.files.ca;
    return options;
  }

  /**
   * The server's own context: the default certificate, and, when SNI may choose a certificate of
   * another key type, the order that lets that one win (key-types.ts). Only this context's order
   * counts: Node takes nothing but the certificate, key and chain from an SNI context.
   */
  private defaultContextOptions(cert: LoadedCertificate | undefined): TlsOptions {
    const options = this.contextOptions(cert);
    if (cert === undefined) return options;
    // ACME certificates are ECDSA (acme/manager.ts), acme-client's TLS-ALPN-01 ones RSA: with a
    // source, either type may come by SNI.
    const mixed = this.source !== undefined || [...this.files.byName.values()].some((c) => c.keyType !== cert.keyType);
    const order = mixed ? preferOtherThan(cert.keyType, this.config.ciphers) : undefined;
    return order === undefined ? options : { ...options, ...order };
  }

  private defaultCertificate(): LoadedCertificate | undefined {
    return this.files.default ?? this.source?.any();
  }

  /** New handshakes without a matching SNI name get the (possibly new) default certificate. */
  private refreshDefault(force = false): void {
    const next = this.defaultCertificate();
    if (this.server === undefined || (!force && next === this.currentDefault)) return;
    this.currentDefault = next;
    const keys = this.config.session_tickets ? this.server.getTicketKeys() : undefined;
    this.server.setSecureContext(this.defaultContextOptions(next));
    // setSecureContext makes a new context with new ticket keys: keep the current ones.
    if (keys !== undefined) this.server.setTicketKeys(keys);
  }

  private startTicketRotation(): void {
    const server = this.server!;
    // RFC 8446 §4.6.1 / RFC 5077 §5.5: ticket keys should change regularly; Node never does it.
    this.ticketTimer = setInterval(() => server.setTicketKeys(randomBytes(48)), this.config.ticket_key_rotation);
    this.ticketTimer.unref();
  }

  // ---- file reload -----------------------------------------------------------------------------

  /** Watches the directories (files are often replaced by rename, which ends a file watch). */
  private watchFiles(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const wanted = new Map<string, Set<string>>();
    for (const f of allFiles(this.config)) {
      const dir = dirname(f);
      if (!wanted.has(dir)) wanted.set(dir, new Set());
      wanted.get(dir)!.add(basename(f));
    }
    for (const [dir, names] of wanted) {
      try {
        const w = watch(dir, { persistent: false }, (_event, changed) => {
          if (changed !== null && !names.has(changed)) return;
          clearTimeout(this.reloadTimer);
          this.reloadTimer = setTimeout(() => this.reloadFiles(), 100);
        });
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch {
        // Watching is a convenience; SIGHUP re-reads the files too.
      }
    }
  }

  /** Re-reads the certificate files; a broken set (e.g. a key written before its cert) keeps the old one. */
  reloadFiles(): boolean {
    try {
      const files = loadFiles(this.config);
      this.files = files;
      this.contexts = new WeakMap();
      this.refreshDefault(true);
      this.log.info({ names: [...files.byName.keys()] }, 'TLS certificates reloaded');
      return true;
    } catch (err) {
      this.log.error({ err }, 'TLS certificate reload failed; still serving the previous certificates');
      return false;
    }
  }
}

/** SNI names compare case-insensitively, and an absolute name ("a.test.", RFC 1034 §3.1) is the same name. */
function sniName(servername: string): string {
  const name = servername.toLowerCase();
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function isAcmeAlpn(socket: unknown): boolean {
  // Should a Node version stop calling SNICallback with the socket as `this`, a pending
  // challenge still gets its certificate (only for its name, only while it is pending).
  if (socket === null || typeof socket !== 'object' || !('encrypted' in socket)) return true;
  return (socket as Record<symbol, boolean>)[kAcmeAlpn] === true;
}

function allFiles(c: ListenerTlsConfig): string[] {
  const out: string[] = [];
  for (const f of [...(c.default ? [c.default] : []), ...c.certificates]) out.push(f.cert, f.key);
  if (c.client_auth !== null) out.push(c.client_auth.ca);
  return out;
}

function loadOne(f: CertificateFiles): LoadedCertificate {
  const cert = readFileSync(f.cert, 'utf8');
  const key = readFileSync(f.key, 'utf8');
  // Fails now, not at the next handshake, when the key does not match.
  createSecureContext({ cert, key });
  return loadCertificate(cert, key, f.names);
}

function loadFiles(c: ListenerTlsConfig): FileSet {
  const byName = new Map<string, LoadedCertificate>();
  const files = new Map<LoadedCertificate, CertificateFiles>();
  let first: LoadedCertificate | undefined;
  for (const f of c.certificates) {
    const cert = loadOne(f);
    files.set(cert, f);
    first ??= cert;
    // The first certificate listed for a name wins.
    for (const n of cert.names) if (!byName.has(n)) byName.set(n, cert);
  }
  const dflt = c.default ? loadOne(c.default) : first;
  if (c.default && dflt !== undefined) files.set(dflt, c.default);
  // The config check reports this at the file's line; a certificate replaced on disk by one of
  // another type is refused here (the previous certificates stay).
  for (const cert of byName.values()) {
    const problem = dflt === undefined ? undefined : mixedKeyTypeProblem(dflt.keyType, cert.keyType);
    if (problem !== undefined) throw new Error(`${cert.names.join(', ')}: ${problem}`);
  }
  return { byName, default: dflt, files, ca: c.client_auth === null ? undefined : readFileSync(c.client_auth.ca, 'utf8') };
}
