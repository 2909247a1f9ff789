// The primary of `usher serve` with `workers` > 1: it forks the worker processes (node:cluster;
// they share the listeners through its round-robin or bind them with SO_REUSEPORT, chosen once
// here: mechanism.ts, bench/README.md has the measurements), sends each the config, and keeps for itself what must happen once
// per usher instance, not once per worker:
// - loading and validating the config, the file watch, SIGHUP and the admin listener (a reload
//   is applied by the first worker, then by the rest: a listener that cannot bind fails it
//   before anything changed);
// - active health checks and DNS discovery: its clusters probe and resolve, and publish each
//   result to every worker (Cluster.applyProbe / applyResolved), so an upstream sees one probe
//   stream whatever the number of workers;
// - ACME: one order, the certificate and the pending challenges sent to every worker;
// - the local rate-limit buckets: workers ask here (one IPC round trip per decision) so that
//   100/s means 100/s for the instance, not 100/s per worker;
// - the open connections per client address of rate_limits.connections_per_client (a
//   concurrency slot per address: one round trip per accepted connection, a release when it closes).
// The circuit breakers and retry budgets stay in the workers, each with its share of the limits
// (src/upstream/share.ts): the limits hold per instance without a round trip per request.
// A worker that dies is replaced, with a backoff that grows while replacements keep dying soon.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { configHash } from '../../admin/api.js';
import type { Fleet, ListenerCertificates, ListenerInfo, ReopenedLogs, WorkerPurge, WorkerView } from '../../admin/host.js';
import type { PurgeRequest, PurgeResult } from '../../cache/purge.js';
import type { LiveWindow } from '../../admin/live.js';
import type { UsherConfig } from '../../config/types.js';
import { InflightCounts, LocalBuckets } from '../../filters/rate-limit/local-store.js';
import type { Cluster, ClusterPublisher } from '../../upstream/cluster.js';
import type { Resolved } from '../../upstream/discovery/dns.js';
import type { ProbeResult } from '../../upstream/health/active.js';
import { limitsBelowWorkers } from '../../upstream/share.js';
import type { Usher } from '../usher.js';
import { REUSE_PORT_ENV, workersMechanism, type WorkersMechanism } from './mechanism.js';
import { isMessage, type FleetState, type FromWorker, type ToWorker, type WorkerStats } from './protocol.js';

/** A replacement that lived less than this counts as dying soon: the next one waits longer. */
const STABLE_MS = 10_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 30_000;
/** How long GET /status, /metrics, /certificates, a purge and a reopen wait for a worker's answer. */
const ASK_TIMEOUT_MS = 2000;

interface Slot {
  readonly n: number;
  worker: Worker | null;
  state: WorkerView['state'];
  startedAt: number | null;
  restarts: number;
  /** Replacements in a row that died within STABLE_MS. */
  streak: number;
  listeners: ListenerInfo[];
  /** Concurrency slots its worker holds (policy\0key → count), released if it dies. */
  readonly slots: Map<string, number>;
  /** The config this worker was last given. */
  config: UsherConfig | null;
  timer: NodeJS.Timeout | null;
}

/** The next replacement's delay: 100 ms, doubling per early death, at most 30 s. */
export function restartDelay(streak: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(streak, 20));
}

export class Primary implements Fleet, ClusterPublisher {
  private readonly slots: Slot[];
  private usher!: Usher;
  private config!: UsherConfig;
  private stopping = false;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null }>();
  private buckets = new LocalBuckets(100);
  private bucketBound = 100;
  private readonly inflight = new InflightCounts();
  private readonly exited = new Set<() => void>();
  /** How the workers share the listeners: chosen at start from the config, kept until the primary exits. */
  mechanism: WorkersMechanism = 'cluster';
  /** The limits below the worker count last warned about (setConfig). */
  private belowWarned = '';

  constructor(
    readonly count: number,
    private readonly log: () => Logger,
  ) {
    this.slots = Array.from({ length: count }, (_, i): Slot => ({ n: i + 1, worker: null, state: 'starting', startedAt: null, restarts: 0, streak: 0, listeners: [], slots: new Map(), config: null, timer: null }));
  }

  /** Forks every worker with `config` and waits until all serve; rejects with the first one's start error. */
  async start(usher: Usher, config: UsherConfig): Promise<void> {
    this.usher = usher;
    this.setConfig(config);
    const chosen = workersMechanism(config.workers_mechanism);
    this.mechanism = chosen.mechanism;
    if (chosen.fallback !== undefined) this.log().warn({ workers_mechanism: config.workers_mechanism }, chosen.fallback);
    // Workers run the same entry point (bin/usher.js serve ...) and find out from the env var
    // that they are workers; `advanced`: structured clone for the config (Maps, nested objects).
    cluster.setupPrimary({ serialization: 'advanced' });
    // Before the workers start: a shared ACME store's challenges and certificates reach every
    // worker that has started by the time they arrive (the others get them in their start state).
    const acme = usher.acme;
    if (acme !== undefined) {
      acme.subscribe(() => void this.publishAcme());
      acme.challengesPublished = () => this.publishAcme();
      acme.open();
    }
    await Promise.all(this.slots.map((s) => this.fork(s)));
  }

  private setConfig(config: UsherConfig): void {
    // Here rather than in every worker, in one line, and again only when the list changes (a
    // reload that leaves these limits alone says nothing): upstream limits smaller than the worker count.
    if (config !== this.config) {
      const below = limitsBelowWorkers(Object.values(config.upstreams), this.count);
      const text = below.map((w) => `${w.setting} (${w.limit}): ${w.effect}`).join('; ');
      if (text !== this.belowWarned && text !== '') {
        this.log().warn({ settings: below.map((w) => w.setting), workers: this.count }, `limits smaller than the number of workers (${this.count}), split across the workers (README: Limits with N workers): ${text}`);
      }
      this.belowWarned = text;
    }
    this.config = config;
    const rl = config.rate_limits;
    const bound = rl === undefined ? 100 : rl.max_keys * Math.max(1, Object.keys(rl.policies).length);
    if (bound !== this.bucketBound) {
      this.bucketBound = bound;
      this.buckets = new LocalBuckets(bound);
    }
  }

  /** Starts the process of one slot; resolves once it serves (rejects if it cannot start). */
  private fork(slot: Slot): Promise<void> {
    slot.timer = null;
    slot.state = 'starting';
    slot.listeners = [];
    const worker = cluster.fork({ USHER_WORKER: String(slot.n), USHER_WORKERS: String(this.count), [REUSE_PORT_ENV]: this.mechanism === 'reuse_port' ? '1' : '0' });
    slot.worker = worker;
    slot.startedAt = Date.now();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      worker.on('message', (m: unknown) => {
        if (!isMessage(m)) return;
        const msg = m as FromWorker;
        switch (msg.t) {
          case 'hello':
            slot.config = this.config;
            this.send(worker, { t: 'start', config: this.config, state: this.state() });
            return;
          case 'ready':
            slot.state = 'serving';
            slot.listeners = msg.listeners;
            settled = true;
            resolve();
            // A reload that happened while this one started: it gets the config of now.
            if (slot.config !== this.config) void this.reloadOne(slot, this.config).catch(() => undefined);
            return;
          case 'failed': {
            const err = Object.assign(new Error(msg.message), { code: msg.code, address: msg.address, port: msg.port });
            this.log().error({ child: slot.n, err }, 'worker could not start');
            if (!settled) {
              settled = true;
              reject(err);
            }
            return;
          }
          case 'limit':
            this.decide(worker, msg);
            return;
          case 'purge-everywhere':
            void this.purgeEverywhere(worker, msg);
            return;
          case 'invalidate-everywhere':
            void this.invalidateEverywhere(slot.n, worker, msg);
            return;
          case 'acquire': {
            const ok = this.inflight.tryAcquire(msg.key, msg.max);
            if (ok) slot.slots.set(msg.key, (slot.slots.get(msg.key) ?? 0) + 1);
            this.send(worker, { t: 'acquired', id: msg.id, count: ok ? this.inflight.count(msg.key) : -1 });
            return;
          }
          case 'release': {
            const n = slot.slots.get(msg.key);
            if (n === undefined) return;
            if (n <= 1) slot.slots.delete(msg.key);
            else slot.slots.set(msg.key, n - 1);
            this.inflight.release(msg.key);
            return;
          }
          default:
            this.answered(msg);
        }
      });
      worker.on('error', (err) => this.log().warn({ child: slot.n, err }, 'worker IPC error'));
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) slot.worker = null;
        // Its requests are gone: so are the concurrency slots they held.
        for (const [key, n] of slot.slots) for (let i = 0; i < n; i++) this.inflight.release(key);
        slot.slots.clear();
        for (const fn of this.exited) fn();
        if (!settled) {
          settled = true;
          reject(new Error(`worker ${slot.n} exited (${signal ?? code}) before it served`));
          return;
        }
        if (this.stopping) return;
        const lived = Date.now() - (slot.startedAt ?? 0);
        slot.streak = lived < STABLE_MS ? slot.streak + 1 : 0;
        const delay = restartDelay(slot.streak - 1);
        slot.state = 'restarting';
        slot.restarts++;
        this.log().error({ child: slot.n, child_pid: worker.process.pid, code, signal, restart_in_ms: delay }, 'worker died: replacing it');
        slot.timer = setTimeout(() => {
          if (this.stopping) return;
          this.fork(slot).then(
            () => this.log().info({ child: slot.n, child_pid: slot.worker?.process.pid, restarts: slot.restarts }, 'worker replaced'),
            () => undefined, // its exit schedules the next try
          );
        }, delay);
      });
    });
  }

  private send(worker: Worker, m: ToWorker): void {
    // The callback takes a write error (EPIPE: the worker just died; its exit handler follows).
    if (worker.isConnected()) worker.send(m, undefined, undefined, () => undefined);
  }

  private broadcast(m: ToWorker): void {
    for (const s of this.slots) if (s.worker !== null && s.config !== null) this.send(s.worker, m);
  }

  /** What a (replacement) worker needs to agree with the others from its first request. */
  private state(): FleetState {
    const rt = this.usher.runtime;
    return {
      upstreams: [...rt.clusters.values()].map((c) => ({
        name: c.name,
        resolved: c.lastResolved,
        servers: c.endpoints.map((e) => ({ server: e.id, activeUp: e.health.activeUp, lastCheck: e.health.lastCheck, drained: e.drained, weight: e.baseWeight !== e.configuredWeight ? e.baseWeight : null })),
      })),
      acme: this.usher.acme?.snapshot() ?? null,
    };
  }

  // ---- requests that want an answer ----------------------------------------------------------

  private ask<T>(worker: Worker, make: (id: number) => ToWorker, timeoutMs: number | null): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs === null ? null : setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('the worker did not answer in time'));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (!worker.isConnected()) {
        this.waiting.delete(id);
        if (timer !== null) clearTimeout(timer);
        reject(new Error('the worker is gone'));
        return;
      }
      worker.send(make(id), undefined, undefined, () => undefined);
    });
  }

  private answered(msg: Exclude<FromWorker, { t: 'hello' | 'ready' | 'failed' | 'limit' | 'acquire' | 'release' | 'purge-everywhere' | 'invalidate-everywhere' }>): void {
    const w = this.waiting.get(msg.id);
    if (w === undefined) return;
    this.waiting.delete(msg.id);
    if (w.timer !== null) clearTimeout(w.timer);
    if (msg.t === 'done' && msg.error !== undefined) w.reject(new Error(msg.error));
    else w.resolve(msg.t === 'stats' ? msg.stats : msg.t === 'metrics' ? msg.metrics : msg.t === 'purged' ? msg.result : msg.t === 'reopened' ? msg.files : msg.t === 'certificates' ? msg.certificates : msg.t === 'live' ? msg.live : msg.t === 'store-purged' ? msg.purged : undefined);
  }

  private decide(worker: Worker, m: Extract<FromWorker, { t: 'limit' }>): void {
    const d = this.buckets.take(m.key, m.interval, m.burst);
    this.send(worker, { t: 'limit', id: m.id, ok: true, allowed: d.allowed, remaining: d.remaining, reset: d.reset });
  }

  // ---- Fleet ---------------------------------------------------------------------------------

  async apply(config: UsherConfig): Promise<void> {
    const serving = this.slots.filter((s) => s.state === 'serving' && s.worker !== null);
    const [first, ...rest] = serving;
    if (first !== undefined) await this.reloadOne(first, config);
    this.setConfig(config);
    const results = await Promise.allSettled(rest.map((s) => this.reloadOne(s, config)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      // The first worker applied it: this one is out of step. Its replacement starts with the config of now.
      const s = rest[i]!;
      this.log().error({ child: s.n, err: r.reason as Error }, 'a worker could not apply the reload that the first applied: replacing it');
      s.worker?.process.kill('SIGKILL');
    });
  }

  private async reloadOne(slot: Slot, config: UsherConfig): Promise<void> {
    await this.ask<void>(slot.worker!, (id) => ({ t: 'reload', id, config }), null);
    slot.config = config;
  }

  async views(): Promise<WorkerView[]> {
    return Promise.all(
      this.slots.map(async (s): Promise<WorkerView> => {
        let stats: WorkerStats | null = null;
        if (s.worker !== null && s.state === 'serving') stats = await this.ask<WorkerStats>(s.worker, (id) => ({ t: 'stats', id }), ASK_TIMEOUT_MS).catch(() => null);
        return {
          id: s.n,
          pid: s.worker?.process.pid ?? null,
          state: s.state,
          started_at: s.startedAt === null ? null : new Date(s.startedAt).toISOString(),
          restarts: s.restarts,
          inflight: stats?.inflight ?? null,
          requests: stats?.requests ?? null,
          connections: stats?.connections ?? null,
          config_hash: stats?.configHash ?? (s.config === null ? null : configHash(s.config)),
          access_log: stats?.accessLog ?? null,
          tracing: stats?.tracing ?? null,
        };
      }),
    );
  }

  listenerInfo(): ListenerInfo[] {
    return this.slots.find((s) => s.state === 'serving')?.listeners ?? this.slots[0]!.listeners;
  }

  serverChanged(upstream: string, server: string, change: { drained: boolean } | { weight: number | null }): void {
    this.broadcast({ t: 'server', upstream, server, change });
  }

  /** Every worker's series, labelled worker="N" (prom-client's aggregation keeps distinct label sets apart). */
  async metricsText(): Promise<string> {
    const all = await Promise.all(this.slots.map((s) => (s.worker === null || s.state !== 'serving' ? [] : this.ask<unknown[]>(s.worker, (id) => ({ t: 'metrics', id }), ASK_TIMEOUT_MS).catch(() => []))));
    return AggregatorRegistry.aggregate(all.filter((m) => m.length > 0) as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
  }

  /** The serving workers (but worker number `except`), each asked `make` (a worker that does not answer in time gives its error). */
  private askServing<T>(make: (id: number) => ToWorker, except = 0): Promise<{ id: number; value: T } | { id: number; error: string }>[] {
    return this.slots
      .filter((s) => s.worker !== null && s.state === 'serving' && s.n !== except)
      .map((s) => this.ask<T>(s.worker!, make, ASK_TIMEOUT_MS).then((value) => ({ id: s.n, value }), (err: Error) => ({ id: s.n, error: err.message })));
  }

  async purge(request: PurgeRequest): Promise<WorkerPurge[]> {
    const all = await Promise.all(this.askServing<PurgeResult>((id) => ({ t: 'purge', id, request })));
    return all.map((r) => ('error' in r ? r : { id: r.id, result: r.value }));
  }

  /** A route's PURGE that reached one worker: every serving worker purges its store of that name; the sum goes back to the one asking. */
  private async purgeEverywhere(from: Worker, m: Extract<FromWorker, { t: 'purge-everywhere' }>): Promise<void> {
    const all = await Promise.all(this.askServing<number>((id) => ({ t: 'purge-store', id, store: m.store, purge: m.purge })));
    const missed = all.filter((r) => 'error' in r).map((r) => r.id);
    if (missed.length > 0) this.log().warn({ store: m.store, url: m.purge.url, missed }, 'PURGE: some workers did not answer; their stores were not purged');
    this.send(from, { t: 'purged-everywhere', id: m.id, purged: all.reduce((n, r) => n + ('value' in r ? r.value : 0), 0), missed });
  }

  /** An unsafe method's invalidation in worker `n` (RFC 9111 §4.4): the other serving workers invalidate the same keys; `n` hears back once they did. */
  private async invalidateEverywhere(n: number, from: Worker, m: Extract<FromWorker, { t: 'invalidate-everywhere' }>): Promise<void> {
    const all = await Promise.all(this.askServing<undefined>((id) => ({ t: 'invalidate-store', id, store: m.store, keys: m.keys }), n));
    const missed = all.filter((r) => 'error' in r).map((r) => r.id);
    if (missed.length > 0) this.log().warn({ store: m.store, keys: m.keys, missed }, 'cache invalidation (RFC 9111 §4.4): some workers did not answer; they may serve the invalidated responses until they expire');
    this.send(from, { t: 'invalidated-everywhere', id: m.id, missed });
  }

  async reopenLogs(): Promise<NonNullable<ReopenedLogs['workers']>> {
    const all = await Promise.all(this.askServing<string[]>((id) => ({ t: 'reopen', id })));
    return all.map((r) => ('error' in r ? { id: r.id, reopened: null, error: r.error } : { id: r.id, reopened: r.value }));
  }

  /** Every worker serves the same listeners with the same files: the first serving one answers. */
  async certificates(): Promise<ListenerCertificates> {
    const first = this.slots.find((s) => s.worker !== null && s.state === 'serving');
    if (first === undefined) return { files: [], acmeListeners: [] };
    return this.ask<ListenerCertificates>(first.worker!, (id) => ({ t: 'certificates', id }), ASK_TIMEOUT_MS);
  }

  async live(): Promise<{ worker: number; window: LiveWindow }[]> {
    const all = await Promise.all(this.askServing<LiveWindow>((id) => ({ t: 'live', id })));
    return all.flatMap((r) => ('error' in r ? [] : [{ worker: r.id, window: r.value }]));
  }

  // ---- ClusterPublisher ----------------------------------------------------------------------

  probe(c: Cluster, id: string, result: ProbeResult, transition: 'up' | 'down' | null, latencyMs: number): void {
    this.broadcast({ t: 'probe', upstream: c.name, server: id, result: { ok: result.ok, detail: result.detail }, transition, latencyMs });
  }

  resolved(c: Cluster, resolved: Resolved): void {
    this.broadcast({ t: 'resolved', upstream: c.name, resolved });
  }

  private async publishAcme(): Promise<void> {
    const snapshot = this.usher.acme!.snapshot();
    await Promise.allSettled(this.slots.map((s) => (s.worker === null || s.config === null ? undefined : this.ask(s.worker, (id) => ({ t: 'acme', id, snapshot }), ASK_TIMEOUT_MS))));
  }

  // ---- stop ----------------------------------------------------------------------------------

  /** Every worker drains (its own graceful_shutdown); one still running `graceMs` + 5 s later is killed. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.state = 'stopping';
      if (s.worker !== null) this.send(s.worker, { t: 'stop' });
    }
    const allGone = () => this.slots.every((s) => s.worker === null || s.worker.isDead());
    if (allGone()) return;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (!allGone()) return;
        clearTimeout(timer);
        this.exited.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const s of this.slots) s.worker?.process.kill('SIGKILL');
      }, graceMs + 5000);
      this.exited.add(check);
    });
  }
}
