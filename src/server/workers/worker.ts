// A worker process of `usher serve` with `workers` > 1: it serves the listeners (shared through
// node:cluster, or bound by each worker with SO_REUSEPORT: mechanism.ts) with the config the
// primary sends, and takes from the primary what must happen once per usher instance: health
// verdicts, DNS answers, ACME certificates, admin changes and the decisions of local rate limits
// (primary.ts says why each is there).
import { configHash } from '../../admin/api.js';
import { purgeShared } from '../../cache/purge.js';
import type { Purge } from '../../cache/store.js';
import type { Decision } from '../../filters/rate-limit/gcra.js';
import type { SharedConnections } from '../../filters/rate-limit/connections.js';
import type { PrimaryLimits } from '../../filters/rate-limit/registry.js';
import { RemoteCertSource } from '../../tls/acme/remote.js';
import { setWorkerPlace } from '../../upstream/share.js';
import { Usher } from '../usher.js';
import { REUSE_PORT_ENV } from './mechanism.js';
import { isMessage, type FleetState, type FromWorker, type ToWorker } from './protocol.js';

/** The worker's number (1..N, kept by a replacement), from the primary's fork. */
export const workerNumber = (): number => Number(process.env.USHER_WORKER);
/** The number of workers of this usher instance, from the primary's fork. */
export const workerTotal = (): number => Number(process.env.USHER_WORKERS);

function send(m: FromWorker): void {
  // The channel closes when the primary dies: the disconnect handler below ends this worker.
  // The callback takes a write error (EPIPE: the primary just died) instead of an 'error' event.
  if (process.connected) process.send!(m, undefined, undefined, () => undefined);
}

/**
 * Local rate-limit decisions and concurrency slots taken in the primary: one timeline and one
 * count per usher instance, whatever the number of workers.
 */
class PrimaryBuckets implements PrimaryLimits {
  readonly fingerprint = 'primary';
  readonly policies = new Map<string, 'fail_open' | 'fail_closed'>();
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (d: Decision) => void; reject: (e: Error) => void }>();
  private readonly acquiring = new Map<number, (count: number) => void>();

  /** Without the primary (it died; this worker is draining), slots are granted: requests finish rather than fail. */
  acquire(key: string, max: number): Promise<number> {
    if (!process.connected) return Promise.resolve(max);
    const id = this.next++;
    return new Promise<number>((resolve) => {
      this.acquiring.set(id, resolve);
      send({ t: 'acquire', id, key, max });
    });
  }

  release(key: string): void {
    send({ t: 'release', key });
  }

  acquired(m: Extract<ToWorker, { t: 'acquired' }>): void {
    const w = this.acquiring.get(m.id);
    this.acquiring.delete(m.id);
    w?.(m.count);
  }

  take(key: string, interval: number, burst: number): Promise<Decision> {
    if (!process.connected) return Promise.reject(new Error('the primary is gone'));
    const id = this.next++;
    return new Promise<Decision>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      send({ t: 'limit', id, key, interval, burst });
    });
  }

  answer(m: Extract<ToWorker, { t: 'limit' }>): void {
    const w = this.waiting.get(m.id);
    if (w === undefined) return;
    this.waiting.delete(m.id);
    if (m.ok) w.resolve({ allowed: m.allowed, remaining: m.remaining, reset: m.reset });
    else w.reject(new Error('the primary could not decide'));
  }

  /** The primary is gone: every waiting request takes its policy's own buckets (sharedDecision's fallback). */
  failAll(): void {
    for (const w of this.waiting.values()) w.reject(new Error('the primary is gone'));
    this.waiting.clear();
    for (const w of this.acquiring.values()) w(0);
    this.acquiring.clear();
  }
}

/**
 * rate_limits.connections_per_client counted in the primary, one count per usher instance: a
 * concurrency slot of PrimaryBuckets (acquire/release) per client address, which the primary
 * also frees when a worker dies.
 */
function primaryConnections(limits: PrimaryBuckets): SharedConnections {
  const key = (ip: string) => `\0conn\0${ip}`;
  return {
    // Without the primary: null, and the worker's own count decides.
    acquire: (ip, limit) => (process.connected ? limits.acquire(key(ip), limit).then((count) => count >= 0) : Promise.resolve(null)),
    release: (ip) => limits.release(key(ip)),
  };
}

/**
 * A route's PURGE: asked of the primary, which has every worker purge (this one too); and an
 * unsafe method's invalidation (RFC 9111 §4.4), which the primary has the other workers apply.
 */
class PurgeEverywhere {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (r: { purged: number; missed: number[] }) => void; reject: (e: Error) => void }>();

  invalidate(store: string, keys: string[]): Promise<{ missed: number[] }> {
    if (!process.connected) return Promise.reject(new Error('the primary is gone'));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      send({ t: 'invalidate-everywhere', id, store, keys });
    });
  }

  ask(store: string, purge: Purge): Promise<{ purged: number; missed: number[] }> {
    if (!process.connected) return Promise.reject(new Error('the primary is gone'));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      send({ t: 'purge-everywhere', id, store, purge });
    });
  }

  answer(m: Extract<ToWorker, { t: 'purged-everywhere' | 'invalidated-everywhere' }>): void {
    const w = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    w?.resolve({ purged: m.t === 'purged-everywhere' ? m.purged : 0, missed: m.missed });
  }

  failAll(): void {
    for (const w of this.waiting.values()) w.reject(new Error('the primary is gone'));
    this.waiting.clear();
  }
}

/** Runs until the primary says stop (or dies, or a signal comes); resolves with the exit code. */
export function runWorker(): Promise<number> {
  const n = workerNumber();
  // Before any cluster is built: the circuit breakers and retry budgets take this worker's share.
  setWorkerPlace(n, workerTotal());
  const certs = new RemoteCertSource();
  const limits = new PrimaryBuckets();
  const connections = primaryConnections(limits);
  const purges = new PurgeEverywhere();
  let usher: Usher | undefined;
  let stopping = false;
  return new Promise<number>((resolve) => {
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      limits.failAll();
      purges.failAll();
      if (usher === undefined) return done(0);
      usher.logger.info({ why, inflight: usher.inflight }, 'worker shutting down');
      void usher.close().then(() => done(0));
    };
    // The IPC channel keeps the event loop alive: close it, so the process ends as a single one does.
    const done = (code: number) => {
      if (process.connected) process.disconnect();
      resolve(code);
    };
    const onMessage = (m: unknown) => {
      if (!isMessage(m)) return;
      const msg = m as ToWorker;
      if (msg.t === 'start') void start(msg.config, msg.state);
      else if (msg.t === 'stop') stop('the primary asked');
      else if (msg.t === 'limit') limits.answer(msg);
      else if (msg.t === 'acquired') limits.acquired(msg);
      else if (msg.t === 'purged-everywhere' || msg.t === 'invalidated-everywhere') purges.answer(msg);
      else if (usher !== undefined) handle(usher, msg, certs);
    };
    const start = async (config: Parameters<typeof Usher.prototype.reload>[0], state: FleetState) => {
      const u = new Usher(config, { role: 'worker', certSource: certs, limits, connections, logFields: { worker: n }, reusePort: process.env[REUSE_PORT_ENV] === '1' });
      usher = u;
      u.runtime.caches.everywhere = (store, p) => purges.ask(store, p);
      u.runtime.caches.invalidateEverywhere = (store, keys) => purges.invalidate(store, keys);
      applyState(u, state, certs);
      try {
        await u.start();
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
        send({ t: 'failed', message: e.message, code: e.code, address: e.address, port: e.port });
        stopping = true;
        return done(3);
      }
      send({ t: 'ready', listeners: u.listenerInfo() });
    };
    process.on('message', onMessage);
    // The primary died or closed the channel: nobody will send the next config or stop: drain and go.
    process.on('disconnect', () => stop('the primary is gone'));
    // systemd's KillMode=control-group and a terminal's ^C signal every process of the group:
    // a worker drains as it would when the primary asks.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Reloads are the primary's: it reads the file and sends the config.
    process.on('SIGHUP', () => usher?.logger.debug('SIGHUP: the primary reloads; ignored in a worker'));
    // Signal the primary (it asks every worker); a SIGUSR1 sent to the whole group (or to one
    // worker) reopens this worker's files rather than start node's inspector.
    process.on('SIGUSR1', () => usher?.reopenOwnLogs());
    send({ t: 'hello' });
  });
}

function handle(usher: Usher, msg: ToWorker, certs: RemoteCertSource): void {
  switch (msg.t) {
    case 'reload':
      usher.reload(msg.config, 'primary').then(
        () => send({ t: 'done', id: msg.id }),
        (err: Error) => send({ t: 'done', id: msg.id, error: err.message }),
      );
      return;
    case 'probe':
      usher.runtime.clusters.get(msg.upstream)?.applyProbe(msg.server, msg.result, msg.transition, msg.latencyMs);
      return;
    case 'resolved':
      usher.runtime.clusters.get(msg.upstream)?.applyResolved(msg.resolved);
      return;
    case 'server':
      applyServer(usher, msg.upstream, msg.server, msg.change);
      return;
    case 'acme':
      certs.update(msg.snapshot);
      send({ t: 'done', id: msg.id });
      return;
    case 'stats':
      send({
        t: 'stats',
        id: msg.id,
        stats: {
          inflight: usher.inflight,
          requests: usher.stats.requests,
          connections: usher.stats.connections,
          configHash: configHash(usher.runtime.config),
          accessLog: usher.accessLog === null ? null : { ...usher.accessLog.counts },
          tracing: usher.tracer === null ? null : usher.tracer.counts,
        },
      });
      return;
    case 'purge':
      void purgeShared(usher.runtime.caches, msg.request).then((result) => send({ t: 'purged', id: msg.id, result }));
      return;
    case 'purge-store':
      send({ t: 'store-purged', id: msg.id, purged: usher.runtime.caches.get(msg.store)?.purge(msg.purge) ?? 0 });
      return;
    case 'invalidate-store': {
      const store = usher.runtime.caches.get(msg.store);
      for (const key of msg.keys) store?.invalidate(key);
      send({ t: 'store-invalidated', id: msg.id });
      return;
    }
    case 'reopen':
      send({ t: 'reopened', id: msg.id, files: usher.reopenOwnLogs() });
      return;
    case 'certificates': {
      // The private keys stay in the worker: the view shows certificates only.
      const c = usher.listenerCertificates();
      send({ t: 'certificates', id: msg.id, certificates: { files: c.files.map((f) => ({ ...f, cert: { ...f.cert, key: '' } })), acmeListeners: c.acmeListeners } });
      return;
    }
    case 'live':
      send({ t: 'live', id: msg.id, live: usher.live.take() });
      return;
    case 'metrics': {
      const m = usher.metrics;
      if (m === null) return send({ t: 'metrics', id: msg.id, metrics: [] });
      m.registry.setDefaultLabels({ worker: String(workerNumber()) });
      void m.registry.getMetricsAsJSON().then((metrics) => send({ t: 'metrics', id: msg.id, metrics }));
      return;
    }
  }
}

function applyServer(usher: Usher, upstream: string, server: string, change: { drained: boolean } | { weight: number | null }): void {
  const c = usher.runtime.clusters.get(upstream);
  const e = c?.endpoints.find((x) => x.id === server);
  if (c === undefined || e === undefined) return;
  if ('drained' in change) c.setDrained(e, change.drained);
  else c.setWeight(e, change.weight);
}

/** What the primary knows already (a replacement worker starts with it, before it takes a connection). */
function applyState(usher: Usher, state: FleetState, certs: RemoteCertSource): void {
  if (state.acme !== null) certs.update(state.acme);
  for (const u of state.upstreams) {
    const c = usher.runtime.clusters.get(u.name);
    if (c === undefined) continue;
    if (u.resolved !== null) c.applyResolved(u.resolved);
    for (const s of u.servers) {
      if (s.lastCheck !== null || !s.activeUp) c.applyProbe(s.server, { ok: s.lastCheck?.ok ?? s.activeUp, detail: s.lastCheck?.detail ?? 'from the primary' }, s.activeUp ? 'up' : 'down', s.lastCheck?.latencyMs ?? null);
      if (s.drained) applyServer(usher, u.name, s.server, { drained: true });
      if (s.weight !== null) applyServer(usher, u.name, s.server, { weight: s.weight });
    }
  }
}
