// The dashboard's live numbers (issue #15 pt 4), collected in the process that serves requests
// (a single usher, or each worker) and taken once a second by the admin listener's event stream
// (dashboard.ts), which merges the workers' windows into one.
//
// Cost: nothing until a dashboard is open. The collector subscribes to `usher:request:done` on
// the first take() and unsubscribes when nobody has taken for IDLE_MS, so with no dashboard
// client the request path publishes nothing for it (a channel nobody subscribes to is skipped,
// events.ts). While one is open, a request costs one Map lookup by route name, two counter
// increments and one histogram increment (a Math.log2): the p50 and p99 come from a log-bucket
// histogram per route and interval (8 buckets per doubling: a quantile is within 9% of the
// true value), and histograms add, so the workers' windows merge exactly.
import diagnostics from 'node:diagnostics_channel';
import { CHANNELS, type DoneEvent } from '../observability/events.js';
import type { Cluster } from '../upstream/cluster.js';

/** Buckets per doubling of the duration. */
const PER_DOUBLING = 8;
/** Bucket 0 holds durations up to 10 µs; the last, anything from 2^(BUCKETS/8) × 10 µs (~5.8 min) on. */
const BUCKETS = 200;
const MIN_MS = 0.01;
/** No take() for this long: the collector unsubscribes (the dashboard closed). */
const IDLE_MS = 10_000;
/** The latest errors kept between two takes. */
const MAX_ERRORS = 50;

/** The bucket of a duration in milliseconds. */
export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  const b = Math.ceil(Math.log2(ms / MIN_MS) * PER_DOUBLING);
  return b < BUCKETS ? b : BUCKETS - 1;
}

/** The upper bound of a bucket in milliseconds (a quantile reads as that bound). */
export function bucketBound(b: number): number {
  return MIN_MS * 2 ** (b / PER_DOUBLING);
}

/** One route's window: requests, server errors (5xx), and the duration histogram, sparse: [bucket, count, bucket, count, ...]. */
export interface RouteWindow {
  count: number;
  errors: number;
  hist: number[];
}

/** A request that ended in an error: a 5xx, or a 4xx (or no status) with a reason code. */
export interface LiveError {
  readonly at: number;
  readonly route: string;
  readonly status: number;
  readonly reason: string | null;
  readonly request_id: string;
  readonly method: string;
  readonly target: string;
  readonly upstream: string | null;
  readonly server: string | null;
}

/** A server passive health checks ejected in this process (with workers, the primary's clusters do not see them). */
export interface LiveEjection {
  readonly upstream: string;
  readonly server: string;
  readonly reason: string;
  readonly until: number;
  readonly ejections: number;
}

/** What one take() returns: the interval since the previous take. */
export interface LiveWindow {
  /** ms since the previous take (0 on the first: nothing was collected before it). */
  readonly ms: number;
  readonly routes: Record<string, RouteWindow>;
  readonly errors: LiveError[];
  readonly ejected: LiveEjection[];
}

interface Acc {
  count: number;
  errors: number;
  readonly hist: Uint32Array;
  /** Buckets touched this interval (to read and clear only those). */
  readonly touched: number[];
}

export interface LiveHost {
  readonly runtime: { readonly clusters: ReadonlyMap<string, Cluster> };
}

export class LiveStats {
  private readonly routes = new Map<string, Acc>();
  private errors: LiveError[] = [];
  private subscribed = false;
  private lastTake = 0;
  private idle: NodeJS.Timeout | null = null;

  constructor(private readonly host: LiveHost) {}

  /** Whether it is collecting now (a dashboard took within IDLE_MS). */
  get active(): boolean {
    return this.subscribed;
  }

  /** The interval since the previous take, and starts the next; the first take starts collecting. */
  take(): LiveWindow {
    const now = Date.now();
    if (!this.subscribed) {
      this.subscribed = true;
      diagnostics.subscribe(CHANNELS.done, this.onDone);
      this.idle = setInterval(() => {
        if (Date.now() - this.lastTake > IDLE_MS) this.stop();
      }, IDLE_MS / 2);
      this.idle.unref();
      this.lastTake = now;
      return { ms: 0, routes: {}, errors: [], ejected: this.ejected(now) };
    }
    const ms = now - this.lastTake;
    this.lastTake = now;
    const routes: Record<string, RouteWindow> = {};
    for (const [name, a] of this.routes) {
      if (a.count === 0) continue;
      const hist: number[] = [];
      a.touched.sort((x, y) => x - y);
      for (const b of a.touched) {
        hist.push(b, a.hist[b]!);
        a.hist[b] = 0;
      }
      a.touched.length = 0;
      routes[name] = { count: a.count, errors: a.errors, hist };
      a.count = 0;
      a.errors = 0;
    }
    // Routes idle for a whole interval are dropped: a reload that removed them leaves nothing behind.
    for (const [name, a] of this.routes) if (routes[name] === undefined && a.count === 0) this.routes.delete(name);
    const errors = this.errors;
    this.errors = [];
    return { ms, routes, errors, ejected: this.ejected(now) };
  }

  /** Stops collecting (the dashboard closed, or usher stops). */
  stop(): void {
    if (!this.subscribed) return;
    this.subscribed = false;
    diagnostics.unsubscribe(CHANNELS.done, this.onDone);
    if (this.idle !== null) clearInterval(this.idle);
    this.idle = null;
    this.routes.clear();
    this.errors = [];
  }

  private ejected(now: number): LiveEjection[] {
    const out: LiveEjection[] = [];
    for (const c of this.host.runtime.clusters.values()) {
      for (const e of c.endpoints) {
        const h = e.health;
        if (h.ejected && h.ejectedUntil > now) out.push({ upstream: c.name, server: e.id, reason: h.reason, until: h.ejectedUntil, ejections: h.ejections });
      }
    }
    return out;
  }

  private readonly onDone = (message: unknown): void => {
    const ev = message as DoneEvent;
    // Several ushers may share a process (tests): each counts its own requests.
    if ((ev.server as { live?: unknown }).live !== this) return;
    const ctx = ev.ctx;
    const name = ctx.route?.name ?? '';
    let a = this.routes.get(name);
    if (a === undefined) this.routes.set(name, (a = { count: 0, errors: 0, hist: new Uint32Array(BUCKETS), touched: [] }));
    a.count++;
    const status = ev.status;
    if (status >= 500) a.errors++;
    const b = bucketOf(ev.durationMs);
    const was = a.hist[b]!;
    a.hist[b] = was + 1;
    if (was === 0) a.touched.push(b);
    if (status >= 500 || (ev.reason !== null && (status >= 400 || status === 0))) {
      if (this.errors.length >= MAX_ERRORS) this.errors.shift();
      this.errors.push({
        at: Date.now(),
        route: name,
        status,
        reason: ev.reason,
        request_id: ctx.requestId,
        method: ctx.method,
        target: ctx.target.length > 200 ? `${ctx.target.slice(0, 200)}…` : ctx.target,
        upstream: ctx.upstream.name ?? null,
        server: ctx.upstream.server ?? null,
      });
    }
  };
}

/** Adds `w` into `into` (the workers' windows of one interval). */
export function mergeRoute(into: RouteWindow | undefined, w: RouteWindow): RouteWindow {
  if (into === undefined) return { count: w.count, errors: w.errors, hist: w.hist.slice() };
  const m = new Map<number, number>();
  for (let i = 0; i < into.hist.length; i += 2) m.set(into.hist[i]!, into.hist[i + 1]!);
  for (let i = 0; i < w.hist.length; i += 2) m.set(w.hist[i]!, (m.get(w.hist[i]!) ?? 0) + w.hist[i + 1]!);
  const hist: number[] = [];
  for (const b of [...m.keys()].sort((x, y) => x - y)) hist.push(b, m.get(b)!);
  return { count: into.count + w.count, errors: into.errors + w.errors, hist };
}

/** The q-quantile (0..1) of a sparse histogram, in milliseconds (the bound of the bucket it falls in); null when empty. */
export function quantile(hist: readonly number[], q: number): number | null {
  let total = 0;
  for (let i = 1; i < hist.length; i += 2) total += hist[i]!;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < hist.length; i += 2) {
    seen += hist[i + 1]!;
    if (seen >= rank) return bucketBound(hist[i]!);
  }
  return bucketBound(hist[hist.length - 2]!);
}
