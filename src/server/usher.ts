import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ListenerConfig, UsherConfig } from '../config/types.js';
import type { ReasonCode } from '../errors/index.js';
import { AccessLog } from '../observability/access-log.js';
import { createLogger } from '../observability/logger.js';
import type { Exchange } from '../proxy/exchange.js';
import type { ListenerFilterDefinition, RouteFilterDefinition } from '../pipeline/registry.js';
import type { Filter, PhaseName } from '../pipeline/types.js';
import type { Cluster, ClusterStartOptions } from '../upstream/cluster.js';
import { Listener, type ListenerOwner } from './listener.js';
import { AcmeManager } from '../tls/acme/manager.js';
import { RemoteCertSource } from '../tls/acme/remote.js';
import { warnInsecureUpstreams } from '../tls/upstream.js';
import { Runtime } from './runtime.js';
import { ConnectionCounts, type SharedConnections } from '../filters/rate-limit/connections.js';
import { logHealthEvents } from './health-log.js';
import { AdminServer } from '../admin/server.js';
import type { AdminHost, Fleet, ListenerCertificates, ListenerInfo, ReloadRecord, ReopenedLogs } from '../admin/host.js';
import type { ClusterPublisher } from '../upstream/cluster.js';
import type { CertSource } from '../tls/source.js';
import type { PrimaryLimits } from '../filters/rate-limit/registry.js';
import type { AdminConfig } from '../admin/config.js';
import type { PendingDomain, ServedCertificate } from '../admin/certificates.js';
import { Metrics } from '../observability/metrics/index.js';
import { LiveStats } from '../admin/live.js';
import type { Tracer } from '../observability/tracing/tracer.js';
import { trustedProxyList } from '../config/address.js';
import { VERSION } from '../util/version.js';
import { LongLivedConnections, type LongLivedEx } from './drain/index.js';

export interface UsherOptions {
  /** Where process logs go (default: stdout). Tests pass a stream to read them. */
  logDestination?: NodeJS.WritableStream;
  /** Where access-log lines go when log.access_log is on, instead of stdout (log.access_log_file wins over it). */
  accessLogDestination?: NodeJS.WritableStream;
  /**
   * Route filters of the embedding program, compiled for every route after the built-in ones
   * (docs/filters.md). Each definition decides per route whether the route gets its filter.
   */
  filters?: readonly RouteFilterDefinition[];
  /**
   * false: run no active health checks in this process; results are fed in from outside with
   * Cluster.applyProbe (a multi-process primary probes once for every worker). Default true.
   */
  probes?: boolean;
  /**
   * Listener filters of the embedding program: on every request of every listener, routed or
   * not (a metrics or access-list filter), after the built-in ones' (access list, TLS edge, security headers) early_request hooks and before their
   * response hook. Their done hook runs for every request, also one that matched no route.
   */
  listenerFilters?: readonly ListenerFilterDefinition<undefined>[];
  /**
   * A part of a multi-process usher (src/server/workers/). "primary": opens no proxy listener;
   * runs the active checks, DNS discovery, ACME and the admin listener, and sends reloads and
   * admin changes through `fleet`. "worker": serves the listeners; probes, DNS answers and ACME
   * certificates come from the primary (`certSource`); no admin listener. Default: "single".
   */
  role?: 'single' | 'primary' | 'worker';
  fleet?: Fleet;
  /** primary: where the clusters' probe results and DNS answers go. */
  publish?: ClusterPublisher;
  /** worker: the certificates of the primary's ACME. */
  certSource?: CertSource;
  /** worker: the primary, which decides the local rate-limit policies for every worker. */
  limits?: PrimaryLimits;
  /** A worker: rate_limits.connections_per_client counted in the primary, across the workers. */
  connections?: SharedConnections;
  /** Fields on every process-log line (a worker: its id). */
  logFields?: Record<string, unknown>;
  /** A worker: bind the listeners (port 0 excepted) with SO_REUSEPORT (workers_mechanism reuse_port). */
  reusePort?: boolean;
}

/**
 * The running proxy: listeners, the current Runtime, reload and graceful shutdown.
 * Lifecycle: create → start → (reload)* → close.
 */
export class Usher implements ListenerOwner, AdminHost {
  runtime: Runtime;
  readonly logger: Logger;
  /** The access log (log.access_log); null when off. */
  accessLog: AccessLog | null = null;
  private readonly options: UsherOptions;
  private readonly listeners = new Map<string, Listener>();
  /** Listeners removed by a reload that still have connections open. */
  private readonly stopping = new Set<Listener>();
  draining = false;
  /** The grace period is over: requests cut from here are logged as shutting_down. */
  cutting = false;
  inflight = 0;
  /** Since start: requests answered (every exchange that finished) and connections accepted. */
  readonly stats = { requests: 0, connections: 0 };
  private drainWaiters: (() => void)[] = [];
  /** ACME certificates, served by every TLS listener; undefined without an `acme` section. */
  readonly certSource: CertSource | undefined;
  /** The ACME client, in the process that orders (not in a worker). */
  readonly acme: AcmeManager | undefined;
  readonly role: 'single' | 'primary' | 'worker';
  readonly fleet: Fleet | undefined;
  readonly listenerFilters: readonly ListenerFilterDefinition<undefined>[];
  readonly reusePort: boolean;
  /** Open connections per client address (rate_limits.connections_per_client), across listeners. */
  readonly connectionCounts: ConnectionCounts;
  readonly startedAt = Date.now();
  /** Reloads since start (for usher_reloads_total) and the last 20 of them (GET /status). */
  readonly reloadCounts = { success: 0, failure: 0 };
  readonly reloads: ReloadRecord[] = [];
  /** The admin listener (admin: in the config), and the metrics it serves; null when off. */
  admin: AdminServer | null = null;
  metrics: Metrics | null = null;
  /** The dashboard's per-route numbers: collected only while a dashboard client is connected (src/admin/live.ts). */
  readonly live = new LiveStats(this);
  /** Tracing (the tracing: section); null when off. */
  tracer: Tracer | null = null;
  /** WebSockets, SSE streams and gRPC calls: kept through reloads that leave their routes alone (src/server/drain/). */
  readonly longLivedConnections: LongLivedConnections = new LongLivedConnections(this);
  /** Reloads run one after another, whoever asks (SIGHUP, the file watcher, POST /config/apply). */
  private reloadChain: Promise<unknown> = Promise.resolve();

  constructor(config: UsherConfig, options: UsherOptions = {}) {
    this.options = options;
    this.connectionCounts = new ConnectionCounts(options.connections);
    this.listenerFilters = options.listenerFilters ?? [];
    this.reusePort = options.reusePort === true;
    this.role = options.role ?? 'single';
    this.fleet = options.fleet;
    this.logger = createLogger(config.log, options.logDestination, options.logFields);
    // Built, not started: the clusters go live in start(), once the listeners are open.
    this.runtime = Runtime.build(config, undefined, options.filters, options.limits).runtime;
    this.configureAccessLog(config);
    this.unsubscribeHealth = logHealthEvents(this);
    this.acme = config.acme === undefined || this.role === 'worker' ? undefined : new AcmeManager(config.acme, this.logger);
    this.certSource = this.role === 'worker' ? options.certSource : this.acme;
    warnInsecureUpstreams(config.upstreams, this.logger);
  }

  private readonly unsubscribeHealth: () => void;

  async start(): Promise<void> {
    try {
      // A shared ACME store is followed before any connection is accepted (challenges of an order in flight).
      this.acme?.open();
      if (this.role !== 'primary') for (const lc of this.runtime.config.listeners) await this.openListener(lc, this.runtime.config);
      this.configureMetrics(this.runtime.config.admin);
      await this.configureTracing(this.runtime.config);
      if (this.runtime.config.admin !== undefined && this.role !== 'worker') this.admin = await AdminServer.open(this, this.runtime.config.admin);
      // A request that reached an earlier listener meanwhile opened its endpoint's pool itself
      // (Endpoint.pool); probes and DNS discovery start here, for a start that is going to hold.
      this.runtime.start(this.startOptions(), this.logger);
      this.acme?.start();
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  private startOptions(): ClusterStartOptions & { stores: boolean } {
    const worker = this.role === 'worker';
    return { probes: !worker && this.options.probes !== false, discovery: !worker, stores: this.role !== 'primary', ...(this.options.publish !== undefined ? { publish: this.options.publish } : {}) };
  }

  /** Bound addresses, in config order (port 0 resolved). */
  addresses(): { host: string; port: number; tls: boolean }[] {
    if (this.fleet !== undefined) return this.fleet.listenerInfo().map((l) => ({ host: l.host, port: l.port, tls: l.tls }));
    return [...this.listeners.values()].map((l) => ({ host: l.config.host, port: l.address().port, tls: l.config.tls !== undefined }));
  }

  /**
   * Swaps in a new, already validated config. Requests in flight finish on the runtime they
   * started with; unchanged upstream pools are kept; listeners are opened and closed to match.
   * If a new listener cannot bind, nothing changes and the error is thrown: the new runtime's
   * clusters were built but never started, so nothing was sent (no probe, no DNS query).
   */
  reload(config: UsherConfig, source = 'file'): Promise<void> {
    const run = this.reloadChain.then(() => this.reloadNow(config, source));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  /** A reload refused before it started: the new config has errors. */
  reloadRejected(source: string, file: string, errors: readonly string[]): void {
    this.record({ at: new Date().toISOString(), source, result: 'failure', file, errors });
  }

  private record(r: ReloadRecord): void {
    this.reloadCounts[r.result]++;
    this.reloads.push(r);
    if (this.reloads.length > 20) this.reloads.shift();
  }

  private async reloadNow(config: UsherConfig, source: string): Promise<void> {
    try {
      // Workers first: if the first one cannot apply it (a listener that cannot bind), nothing changed anywhere.
      await this.fleet?.apply(config);
      await this.swap(config);
    } catch (err) {
      this.record({ at: new Date().toISOString(), source, result: 'failure', file: config.file, errors: [(err as Error).message ?? String(err)] });
      throw err;
    }
    this.record({ at: new Date().toISOString(), source, result: 'success', file: config.file });
  }

  /**
   * A new listener on the port of one this reload removes (TLS switched on or off: another
   * listener key): the old one holds the port until the swap, so without SO_REUSEPORT the bind
   * fails with EADDRINUSE, and with it (workers_mechanism reuse_port) it would succeed and the
   * kernel would spread connections over both, some meeting the wrong protocol. Refused alike.
   */
  private refuseSamePort(lc: ListenerConfig, wanted: ReadonlyMap<string, ListenerConfig>, config: UsherConfig): void {
    if (lc.port === 0) return;
    for (const [key, old] of this.listeners) {
      if (wanted.has(key) || old.config.host !== lc.host || old.config.port !== lc.port) continue;
      throw new Error(`listeners[${config.listeners.indexOf(lc)}] (${lc.address}): switching TLS ${lc.tls ? 'on' : 'off'} on a port that is serving takes a restart (or move it to another port)`);
    }
  }

  private async swap(config: UsherConfig): Promise<void> {
    // In slices: requests are served by the current runtime meanwhile (issue #11).
    const { runtime, retired } = await Runtime.buildInSlices(config, this.runtime, this.options.filters, 8, this.options.limits);
    const wanted = new Map(config.listeners.map((l, i) => [listenerKey(l, i), l]));
    const opened: Listener[] = [];
    let admin: AdminServer | null = null;
    try {
      if (this.role !== 'primary') {
        for (const [key, lc] of wanted) if (!this.listeners.has(key)) this.refuseSamePort(lc, wanted, config);
        for (const [key, lc] of wanted) if (!this.listeners.has(key)) opened.push(await this.openListener(lc, config));
      }
      // A new or moved admin listener is bound before the commit, like a proxy listener: if it
      // cannot bind, the reload fails and nothing changes.
      if (config.admin !== undefined && this.role !== 'worker' && (this.admin === null || !this.admin.sameAddress(config.admin))) admin = await AdminServer.open(this, config.admin);
    } catch (err) {
      for (const l of opened) {
        this.listeners.delete(listenerKey(l.config, config.listeners.indexOf(l.config)));
        await l.stopAccepting();
      }
      throw err;
    }
    const previous = this.runtime;
    this.runtime = runtime;
    this.configureMetrics(config.admin);
    void this.configureTracing(config, previous.config);
    this.metrics?.forget(gone(previous.config.routes.map((r) => r.name), config.routes.map((r) => r.name)), gone(Object.keys(previous.config.upstreams), Object.keys(config.upstreams)));
    if (admin !== null) {
      // Moved (or added): the previous admin listener finishes what it is answering (the apply that moved it) and closes.
      void this.admin?.close();
      this.admin = admin;
    } else if ((config.admin === undefined || this.role === 'worker') && this.admin !== null) {
      void this.admin.close();
      this.admin = null;
    } else this.admin?.update(config.admin!);
    // Committed: the new clusters go live in the same tick as the swap, so no request sees one
    // unstarted; reused clusters are running already and keep their pools and probes.
    runtime.start(this.startOptions(), this.logger);
    // Long-lived connections on routes this reload left alone move to the new runtime (their
    // count with them, so that the previous one drains); the others start their drain policy.
    this.longLivedConnections.reloaded(runtime);
    if (config.acme !== undefined) this.acme?.update(config.acme);
    warnInsecureUpstreams(config.upstreams, this.logger);
    if (this.role !== 'single' && config.workers !== previous.config.workers) this.logger.warn('workers changed: the number of worker processes changes at the next restart');
    if (this.role === 'primary' && config.workers_mechanism !== previous.config.workers_mechanism) this.logger.warn('workers_mechanism changed: takes effect at the next restart');
    if (this.role !== 'worker' && (config.acme === undefined) !== (this.acme === undefined)) this.logger.warn('adding or removing the acme section takes effect at the next restart');
    this.configureAccessLog(config);
    for (const [key, listener] of this.listeners) {
      if (!wanted.has(key)) {
        this.listeners.delete(key);
        this.stopping.add(listener);
        void listener.stopAccepting().then(() => this.stopping.delete(listener));
      } else {
        listener.applySettings(config);
        // HTTP/2 settings are fixed when a listener opens (reopening the same port would clash).
        if (JSON.stringify(listener.config.http2) !== JSON.stringify(wanted.get(key)!.http2)) {
          this.logger.warn({ address: listener.config.address }, 'listeners[].http2 changed: restart usher to apply it to this listener');
        }
      }
    }
    if (previous.config.limits.header_size !== config.limits.header_size) {
      this.logger.warn('limits.header_size applies to listeners opened after this reload; restart usher to apply it everywhere');
    }
    this.logger.info({ file: config.file, routes: config.routes.length, upstreams: Object.keys(config.upstreams).length, retired: retired.map((c) => c.name) }, 'config reloaded');
    // Requests still running on the previous runtime may retry on its pools: close them (undici
    // lets dispatched requests finish) only once the last of those requests is done.
    const stores = runtime.retiredStores;
    if (retired.length > 0 || stores.length > 0) {
      for (const c of retired) c.stopProbes();
      previous.onDrained = () => {
        void closeClusters(retired);
        for (const s of stores) void s.close();
      };
      if (previous.inflight === 0) previous.onDrained();
    }
  }

  /** Graceful shutdown: stop accepting, let in-flight requests finish within graceMs, then cut. */
  async close(graceMs = this.runtime.config.timeouts.graceful_shutdown): Promise<void> {
    this.draining = true;
    // WebSockets, SSE streams and gRPC calls are told now (close 1001, end of stream, UNAVAILABLE), not cut at the end.
    this.longLivedConnections.shutdown();
    const acmeStopped = this.acme?.close();
    const stops = [...this.listeners.values()].map((l) => l.stopAccepting());
    const drained = this.inflight === 0 ? Promise.resolve(true) : new Promise<boolean>((resolve) => this.drainWaiters.push(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const clean = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    const cut = clean ? 0 : this.inflight;
    if (!clean) this.logger.warn({ inflight: this.inflight }, 'grace period over: closing the remaining connections');
    this.cutting = true;
    for (const l of [...this.listeners.values(), ...this.stopping]) l.closeAll();
    // The cut requests finish as their sockets close (a tick or two): wait for them, boundedly,
    // so that each one's done phase and access-log line (shutting_down) still happen.
    if (!clean) {
      const settle = new Promise<boolean>((resolve) => setTimeout(resolve, 1000, false).unref());
      await Promise.race([drained, settle]);
    }
    await Promise.all(stops);
    this.listeners.clear();
    await this.admin?.close();
    this.admin = null;
    this.metrics?.close();
    this.metrics = null;
    this.live.stop();
    await (clean ? this.runtime.close() : this.runtime.destroy());
    // After the last request's done phase: its spans are in the queue, flushed within the export timeout.
    await this.tracer?.close();
    this.tracer = null;
    this.unsubscribeHealth();
    await acmeStopped;
    // The last line: what the process did, and whether shutdown cut anything.
    this.logger.info({ requests: this.stats.requests, connections: this.stats.connections, requests_cut: cut }, 'stopped');
    await this.flushLogs();
  }

  // ---- ListenerOwner / ExchangeOwner ---------------------------------------------------------

  exchangeDone(ex: Exchange): void {
    this.inflight--;
    this.stats.requests++;
    const held = this.longLivedConnections.size === 0 ? undefined : this.longLivedConnections.done(ex);
    this.release(held ?? (ex.runtime as Runtime));
    if (this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** One request fewer in flight on `rt`: a retired runtime's last one closes what it retired. */
  release(rt: Runtime): void {
    if (--rt.inflight === 0 && rt.onDrained !== null && rt !== this.runtime) {
      const drained = rt.onDrained;
      rt.onDrained = null;
      drained();
    }
  }

  longLived(ex: LongLivedEx): void {
    this.longLivedConnections.add(ex);
  }

  admitConnection(socket: Socket): boolean | Promise<boolean> {
    const limit = this.runtime.rateLimits.connectionsPerClient;
    if (limit === undefined) return true;
    const admitted = this.connectionCounts.admit(socket, limit);
    if (admitted === true) return true;
    if (admitted === false) return this.connectionRefused(socket, limit);
    return admitted.then((ok) => ok || this.connectionRefused(socket, limit));
  }

  private connectionRefused(socket: Socket, limit: number): false {
    this.logger.debug({ client: socket.remoteAddress, limit }, 'connection refused: rate_limits.connections_per_client reached');
    return false;
  }

  clientError(reason: ReasonCode, detail: string, socket: Socket): void {
    if (this.accessLog !== null) {
      this.accessLog.rejected(socket.remoteAddress, reason, detail);
    } else {
      this.logger.debug({ client: socket.remoteAddress, reason, detail }, 'request rejected before routing');
    }
  }

  filterFailed(ex: Exchange, filter: Filter, phase: PhaseName, err: unknown): void {
    const outcome = phase === 'done' ? 'a filter failed in the done phase (the request had ended)' : 'a filter failed: the request is answered 500 internal_error';
    this.logger.error({ err, filter: filter.name, phase, request_id: ex.requestId }, outcome);
  }

  headRefused(ex: Exchange, filters: readonly string[], err: unknown): void {
    this.logger.error({ err, filters, request_id: ex.requestId }, 'a head could not be sent after these filters edited it: the request is answered 500 internal_error');
  }

  internalError(err: unknown): void {
    this.logger.error({ err }, 'internal error while handling a request');
  }

  listenerError(listener: Listener, err: Error): void {
    this.logger.error({ err, address: listener.config.address }, 'listener error');
  }

  listenerInfo(): ListenerInfo[] {
    if (this.fleet !== undefined) return this.fleet.listenerInfo();
    return [...this.listeners.values()].map((l) => ({ address: l.config.address, host: l.config.host, port: l.address().port, tls: l.config.tls !== undefined, http2: l.config.http2 !== undefined }));
  }

  /** The certificates from files of this process's TLS listeners, and the listeners that also serve ACME's. */
  listenerCertificates(): ListenerCertificates {
    const files: ServedCertificate[] = [];
    const acmeListeners: string[] = [];
    for (const l of this.listeners.values()) {
      const tls = l.tls;
      if (tls === undefined) continue;
      for (const cert of tls.certificates()) {
        const { files: f, isDefault } = tls.fileOf(cert);
        if (f !== undefined) files.push({ cert, listener: l.config.address, isDefault, source: { type: 'file', cert: f.cert, key: f.key } });
      }
      if (tls.acme) acmeListeners.push(l.config.address);
    }
    return { files, acmeListeners };
  }

  /**
   * Every certificate the TLS listeners serve: their files, and the ACME ones (served by every TLS
   * listener that has no file for the name). A primary has no proxy listener: its first serving
   * worker tells which files and ACME listeners it serves; the ACME state is the primary's own.
   */
  async certificateInventory(): Promise<{ served: ServedCertificate[]; pending: PendingDomain[] }> {
    const own = this.fleet === undefined ? this.listenerCertificates() : await this.fleet.certificates();
    const served = [...own.files];
    const acme = this.acme?.domainStates() ?? [];
    const directory = this.acme?.directory ?? '';
    for (const listener of own.acmeListeners) {
      for (const d of acme) {
        if (d.cert !== undefined) served.push({ cert: d.cert, listener, isDefault: false, source: { type: 'acme', domain: d.domain, directory, nextRenewal: d.nextRenewal, failures: d.failures } });
      }
    }
    const pending = acme.filter((d) => d.cert === undefined).map((d) => ({ domain: d.domain, directory, nextRenewal: d.nextRenewal, failures: d.failures }));
    return { served, pending };
  }

  /**
   * For the expiry metric (of a single process or a worker): listener address, certificate names,
   * source (file, acme), expiry (epoch ms). A worker's ACME certificates are those the primary sent.
   */
  certificates(): { listener: string; names: string; source: string; notAfter: number }[] {
    const { files, acmeListeners } = this.listenerCertificates();
    const acme = this.acme !== undefined ? this.acme.domainStates().flatMap((d) => (d.cert === undefined ? [] : [d.cert])) : this.certSource instanceof RemoteCertSource ? this.certSource.obtained() : [];
    const out = files.map((s) => ({ listener: s.listener, names: s.cert.names.join(','), source: 'file', notAfter: s.cert.notAfter.getTime() }));
    for (const listener of acmeListeners) for (const c of acme) out.push({ listener, names: c.names.join(','), source: 'acme', notAfter: c.notAfter.getTime() });
    return out;
  }

  acmeStoreUp(): number | undefined {
    return this.acme !== undefined ? this.acme.storeUp : this.certSource instanceof RemoteCertSource ? this.certSource.storeUp : undefined;
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Metrics exist while admin.metrics is on: created once (a reload keeps their counts), closed when turned off. */
  private configureMetrics(admin: AdminConfig | undefined): void {
    // A primary serves its workers' metrics (Fleet.metricsText); it serves no request of its own.
    const on = admin !== undefined && admin.metrics && this.role !== 'primary';
    if (on && this.metrics === null) this.metrics = new Metrics(this);
    else if (!on && this.metrics !== null) {
      this.metrics.close();
      this.metrics = null;
    }
  }

  /**
   * The tracer exists while `tracing` is configured. The tracer module is loaded only then. A
   * reload that changes the section (or the trusted proxies it may judge by) replaces it; the old
   * one flushes what it recorded in the background.
   */
  private async configureTracing(config: UsherConfig, previous?: UsherConfig): Promise<void> {
    const t = config.tracing;
    const same = previous !== undefined && JSON.stringify(previous.tracing) === JSON.stringify(t) && JSON.stringify(previous.proxy.trusted_proxies) === JSON.stringify(config.proxy.trusted_proxies);
    if (same && (this.tracer !== null || t === undefined)) return;
    const old = this.tracer;
    this.tracer = null;
    if (old !== null) void old.close();
    if (t === undefined) return;
    const { Tracer } = await import('../observability/tracing/tracer.js');
    // A reload may have come and gone while the module loaded: the latest config decides.
    if (this.runtime.config.tracing !== t || this.tracer !== null || this.draining) return;
    this.tracer = new Tracer(this, t, trustedProxyList(config.proxy.trusted_proxies), this.logger, VERSION);
  }

  private async openListener(lc: ListenerConfig, config: UsherConfig): Promise<Listener> {
    const listener = new Listener(this, lc, config);
    await listener.listen();
    this.listeners.set(listenerKey(lc, config.listeners.indexOf(lc)), listener);
    return listener;
  }

  /** The access log follows the config: a reload that changes its format or file replaces it (the old one flushes and closes). */
  private configureAccessLog(config: UsherConfig): void {
    const on = config.log.access_log;
    const current = this.accessLog;
    if (current !== null && (!on || JSON.stringify(current.settings) !== JSON.stringify(config.log.access))) {
      void current.close();
      this.accessLog = null;
    }
    if (on && this.accessLog === null) this.accessLog = new AccessLog(this, config.log.access, this.logger, this.options.accessLogDestination, this.options.logFields);
    this.logger.level = config.log.level;
  }

  /** SIGUSR1 and POST /reopen-logs: the log files this process writes are opened again by their paths (logrotate). */
  reopenOwnLogs(): string[] {
    const log = this.accessLog;
    if (log === null || !log.reopen()) return [];
    this.logger.info({ file: log.file }, 'log files reopened');
    return [log.file!];
  }

  /** Reopens the log files of this process and, in a primary, of every worker (they write the access log); the files reopened, each once. */
  async reopenLogs(): Promise<ReopenedLogs> {
    const own = this.reopenOwnLogs();
    if (this.fleet === undefined) return { reopened: own };
    const workers = await this.fleet.reopenLogs();
    return { reopened: [...new Set([...own, ...workers.flatMap((w) => w.reopened ?? [])])], workers };
  }

  private async flushLogs(): Promise<void> {
    try {
      this.logger.flush();
    } catch {
      // a closed destination has nothing left to flush
    }
    await this.accessLog?.close();
    this.accessLog = null;
  }
}

function gone(before: readonly string[], after: readonly string[]): string[] {
  const now = new Set(after);
  return before.filter((n) => !now.has(n));
}

function listenerKey(l: ListenerConfig, index: number): string {
  // TLS settings and certificates change on a live listener (Listener.applySettings); only
  // switching TLS on or off needs a new server. Port 0 binds a fresh port each time, so two such
  // listeners are distinct (by position), not one entry that hides the other from close().
  return `${l.host}|${l.port === 0 ? `0#${index}` : l.port}|${l.tls ? 'tls' : ''}`;
}

async function closeClusters(clusters: readonly Cluster[]): Promise<void> {
  await Promise.allSettled(clusters.map((c) => c.close()));
}
