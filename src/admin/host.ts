// What the admin API needs of the running usher (src/server/usher.ts implements it). A
// structural interface, so that admin/ does not import the server it is part of.
import type { Logger } from 'pino';
import type { UsherConfig } from '../config/types.js';
import type { AccessLog } from '../observability/access-log.js';
import type { PendingDomain, ServedCertificate } from './certificates.js';
import type { Metrics } from '../observability/metrics/index.js';
import type { Tracer } from '../observability/tracing/tracer.js';
import type { CompiledRoute } from '../pipeline/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { CacheStores } from '../cache/registry.js';

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

export interface AdminHost {
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
  /** The access log, when on. */
  readonly accessLog: AccessLog | null;
  /** Reopens the log files by their paths (logrotate); the files reopened. */
  reopenLogs(): string[];
  listenerInfo(): ListenerInfo[];
  /** The certificates the TLS listeners serve (files and ACME), and ACME domains still without one. */
  certificateInventory(): { served: ServedCertificate[]; pending: PendingDomain[] };
  /** A validated config through the same path as a SIGHUP reload (serialised with it); throws when it cannot be applied. */
  reload(config: UsherConfig, source: string): Promise<void>;
  /** Records a reload refused before it started (the config has errors). */
  reloadRejected(source: string, file: string, errors: readonly string[]): void;
}
