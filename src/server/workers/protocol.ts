// The messages between the primary and its worker processes (node:cluster IPC with
// `serialization: 'advanced'`, i.e. structured clone: a normalised config, a Map of DNS answers
// and PEM text cross as they are). Requests that want an answer carry an `id`; the answer
// carries the same id.
import type { UsherConfig } from '../../config/types.js';
import type { AcmeSnapshot } from '../../tls/acme/manager.js';
import type { Resolved } from '../../upstream/discovery/dns.js';
import type { ProbeResult } from '../../upstream/health/active.js';
import type { ListenerCertificates, ListenerInfo, TracingCounts } from '../../admin/host.js';
import type { AccessLogCounts } from '../../observability/access-log.js';
import type { PurgeRequest, PurgeResult } from '../../cache/purge.js';
import type { Purge } from '../../cache/store.js';
import type { LiveWindow } from '../../admin/live.js';

/** The state of one server that a worker takes from the primary (health verdict, admin overrides). */
export interface ServerState {
  readonly server: string;
  readonly activeUp: boolean;
  readonly lastCheck: { at: number; ok: boolean; detail: string; latencyMs: number | null } | null;
  readonly drained: boolean;
  /** An admin override of the weight, or null. */
  readonly weight: number | null;
}

/** What a worker needs besides the config to agree with the primary from its first request. */
export interface FleetState {
  readonly upstreams: { readonly name: string; readonly resolved: Resolved | null; readonly servers: readonly ServerState[] }[];
  readonly acme: AcmeSnapshot | null;
}

export type ToWorker =
  | { t: 'start'; config: UsherConfig; state: FleetState }
  | { t: 'reload'; id: number; config: UsherConfig }
  | { t: 'probe'; upstream: string; server: string; result: ProbeResult; transition: 'up' | 'down' | null; latencyMs: number }
  | { t: 'resolved'; upstream: string; resolved: Resolved }
  | { t: 'server'; upstream: string; server: string; change: { drained: boolean } | { weight: number | null } }
  | { t: 'acme'; id: number; snapshot: AcmeSnapshot }
  | { t: 'stats'; id: number }
  | { t: 'metrics'; id: number }
  /** POST /cache/purge: each worker holds its own stores. */
  | { t: 'purge'; id: number; request: PurgeRequest }
  /** POST /reopen-logs and SIGUSR1 to the primary: the workers write the access log files. */
  | { t: 'reopen'; id: number }
  /** A route's PURGE that reached one worker: the same purge in this worker's store of that name. */
  | { t: 'purge-store'; id: number; store: string; purge: Purge }
  /** The answer to `purge-everywhere`: the sum over the workers, and those that did not answer. */
  | { t: 'purged-everywhere'; id: number; purged: number; missed: number[] }
  /** RFC 9111 §4.4 in another worker: these keys leave this worker's store of that name. */
  | { t: 'invalidate-store'; id: number; store: string; keys: string[] }
  /** The answer to `invalidate-everywhere`: the workers that did not answer in time. */
  | { t: 'invalidated-everywhere'; id: number; missed: number[] }
  /** GET /certificates: the file certificates of the worker's listeners (the primary has none). */
  | { t: 'certificates'; id: number }
  /** The dashboard's tick: the worker's live window since the previous one. */
  | { t: 'live'; id: number }
  | { t: 'limit'; id: number; ok: boolean; allowed: boolean; remaining: number; reset: number }
  | { t: 'acquired'; id: number; count: number }
  | { t: 'stop' };

export interface WorkerStats {
  readonly inflight: number;
  readonly requests: number;
  readonly connections: number;
  readonly configHash: string;
  /** The worker's access log counts (the workers write the access log), null when it is off. */
  readonly accessLog: AccessLogCounts | null;
  /** The worker's span accounting (the workers record and export spans), null with tracing off. */
  readonly tracing: TracingCounts | null;
}

export type FromWorker =
  /** Listening for messages: the primary sends `start`. */
  | { t: 'hello' }
  | { t: 'ready'; listeners: ListenerInfo[] }
  /** It could not start: the error, with the address it could not bind (EADDRINUSE, EACCES). */
  | { t: 'failed'; message: string; code?: string | undefined; address?: string | undefined; port?: number | undefined }
  | { t: 'done'; id: number; error?: string }
  | { t: 'stats'; id: number; stats: WorkerStats }
  | { t: 'metrics'; id: number; metrics: unknown[] }
  | { t: 'purged'; id: number; result: PurgeResult }
  | { t: 'reopened'; id: number; files: string[] }
  | { t: 'store-purged'; id: number; purged: number }
  | { t: 'store-invalidated'; id: number }
  /** A route's PURGE: the primary asks every worker (this one too) to purge its store of that name. */
  | { t: 'purge-everywhere'; id: number; store: string; purge: Purge }
  /**
   * An unsafe method's success invalidated these keys in this worker's store (RFC 9111 §4.4): the
   * primary has every other worker invalidate them too, and answers once they did.
   */
  | { t: 'invalidate-everywhere'; id: number; store: string; keys: string[] }
  | { t: 'certificates'; id: number; certificates: ListenerCertificates }
  | { t: 'live'; id: number; live: LiveWindow }
  /** A local rate-limit decision, taken in the primary so that a limit holds per usher instance. */
  | { t: 'limit'; id: number; key: string; interval: number; burst: number }
  /** A concurrency slot (policy\0key) counted across workers; released by `release` (or the worker's death). */
  | { t: 'acquire'; id: number; key: string; max: number }
  | { t: 'release'; key: string };

/** Marks usher's messages among whatever else may travel on the IPC channel. */
export const isMessage = (m: unknown): m is { t: string } => typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
