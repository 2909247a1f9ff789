// What the admin API needs of the running usher (src/server/usher.ts implements it). A
// structural interface, so that admin/ does not import the server it is part of.
import type { Logger } from 'pino';
import type { UsherConfig } from '../config/types.js';
import type { AccessLog, AccessLogCounts } from '../observability/access-log.js';
import type { PendingDomain, ServedCertificate } from './certificates.js';
import type { Metrics } from '../observability/metrics/index.js';
import type { Tracer } from '../observability/tracing/tracer.js';
import type { CompiledRoute } from '../pipeline/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { CacheStores } from '../cache/registry.js';
import type { PurgeRequest, PurgeResult } from '../cache/purge.js';
import type { LiveStats, LiveWindow } from './live.js';

/** One reload, kept for GET /status (the last 20). */
export interface ReloadRecord {
  /** ISO time. */
  readonly at: string;
  /** What asked for it: "file" (SIGHUP, a saved file) or "admin" (POST /config/apply). */
  readonly source: string;
  readonly result: 'success' | 'failure';
  /** Why it failed: the config's errors (file:line:col lines) or the error that stopped it. */
  readonly errors?: readonly string[];
  readonly file?: string;
}

export interface ListenerInfo {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly http2: boolean;
}

/** One worker process as GET /status reports it (src/server/workers/). */
export interface WorkerView {
  readonly id: number;
  readonly pid: number | null;
  /** starting → serving → stopping; "restarting": it died and a replacement is due (backoff). */
  readonly state: 'starting' | 'serving' | 'stopping' | 'restarting';
  readonly started_at: string | null;
  /** How many times this worker slot was replaced after its process died. */
  readonly restarts: number;
  /** From the worker itself when it answered in time (null otherwise). */
  readonly inflight: number | null;
  readonly requests: number | null;
  readonly connections: number | null;
  /** sha256 of the config the worker serves (the same as config.hash once a reload reached it). */
  readonly config_hash: string | null;
  /** Its access log's counts (null: off, or it did not answer). */
  readonly access_log: AccessLogCounts | null;
  /** Its spans (null: tracing off, or it did not answer). */
  readonly tracing: TracingCounts | null;
}

/** A tracer's span accounting (Tracer.counts). */
export interface TracingCounts {
  readonly exported: number;
  readonly dropped: number;
  readonly failed: number;
  readonly retried: number;
  readonly queued: number;
}

/** The certificates from files of a process's TLS listeners, and the listeners that also serve ACME's. */
export interface ListenerCertificates {
  readonly files: readonly ServedCertificate[];
  readonly acmeListeners: readonly string[];
}

/** A purge in one worker: its result, or why it did not answer. */
export type WorkerPurge = { readonly id: number; readonly result: PurgeResult } | { readonly id: number; readonly error: string };

/** The log files reopened (each once); with workers, what each one reopened (null: it did not answer). */
export interface ReopenedLogs {
  readonly reopened: string[];
  readonly workers?: { readonly id: number; readonly reopened: string[] | null; readonly error?: string }[];
}

/**
 * The worker processes a primary runs (src/server/workers/primary.ts): a reload, a server's
 * drain/enable/weight and the metrics go through it to every worker.
 */
export interface Fleet {
  /** Applies a validated config in every worker (the first one, then the rest); throws when the first cannot. */
  apply(config: UsherConfig): Promise<void>;
  views(): Promise<WorkerView[]>;
  /** How the workers share the listeners (workers_mechanism, as chosen at start). */
  readonly mechanism: 'cluster' | 'reuse_port';
  /** The workers' listeners, as the first one serving reports them. */
  listenerInfo(): ListenerInfo[];
  /** The admin API changed a server: the same change in every worker. */
  serverChanged(upstream: string, server: string, change: { drained: boolean } | { weight: number | null }): void;
  /** Prometheus text of every worker's metrics, each series labelled with its worker. */
  metricsText(): Promise<string>;
  /** POST /cache/purge in every serving worker (each holds its own stores). */
  purge(request: PurgeRequest): Promise<WorkerPurge[]>;
  /** Every serving worker reopens its log files. */
  reopenLogs(): Promise<NonNullable<ReopenedLogs['workers']>>;
  /** The first serving worker's listener certificates (the primary has no proxy listener). */
  certificates(): Promise<ListenerCertificates>;
  /** The dashboard's tick: every serving worker's live window (LiveStats.take); a worker that does not answer in time is left out. */
  live(): Promise<{ worker: number; window: LiveWindow }[]>;
}

export interface AdminHost {
  /** Set in the primary of several worker processes. */
  readonly fleet?: Fleet | undefined;
  readonly runtime: {
    readonly config: UsherConfig;
    readonly clusters: ReadonlyMap<string, Cluster>;
    readonly routes: readonly CompiledRoute[];
    readonly caches: CacheStores;
  };
  readonly logger: Logger;
  readonly inflight: number;
  readonly stats: { readonly requests: number; readonly connections: number };
  readonly startedAt: number;
  readonly reloads: readonly ReloadRecord[];
  /** Metrics, when admin.metrics is on. */
  readonly metrics: Metrics | null;
  /** Tracing, when the tracing section is configured. */
  readonly tracer: Tracer | null;
  /** The dashboard's numbers of this process (collected only while a dashboard takes them). */
  readonly live: LiveStats;
  /** The access log, when on. */
  readonly accessLog: AccessLog | null;
  /** Reopens the log files by their paths (logrotate), a primary's workers' too; the files reopened. */
  reopenLogs(): Promise<ReopenedLogs>;
  listenerInfo(): ListenerInfo[];
  /** The certificates the TLS listeners serve (files and ACME), and ACME domains still without one. */
  certificateInventory(): Promise<{ served: ServedCertificate[]; pending: PendingDomain[] }>;
  /** A validated config through the same path as a SIGHUP reload (serialised with it); throws when it cannot be applied. */
  reload(config: UsherConfig, source: string): Promise<void>;
  /** Records a reload refused before it started (the config has errors). */
  reloadRejected(source: string, file: string, errors: readonly string[]): void;
}
