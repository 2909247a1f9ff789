// Prometheus metrics (issue #15 pt 2), served by the admin listener at GET /metrics. Created
// only when `admin` is configured with metrics on: it subscribes to the request path's
// diagnostics channels (events.ts) and nothing publishes an event nobody subscribes to, so with
// metrics off nothing is computed. Series are bound once per route, upstream, server and
// listener (series.ts), kept on those objects, and rebuilt as a reload compiles new ones.
import diagnostics from 'node:diagnostics_channel';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { CacheStores } from '../../cache/registry.js';
import type { CacheStore } from '../../cache/store.js';
import type { SecondLevel } from '../../cache/store.js';
import type { CompiledRoute } from '../../pipeline/types.js';
import type { Cluster } from '../../upstream/cluster.js';
import type { Endpoint } from '../../upstream/endpoint.js';
import { HEALTH_CHANNEL, PROBE_CHANNEL, type HealthEvent, type ProbeEvent } from '../../upstream/health/state.js';
import { CHANNELS, LISTENER_CHANNELS, type ConnectErrorEvent, type ConnectionEvent, type DoneEvent, type RetryEvent, type TlsHandshakeEvent, type UpstreamConnectedEvent, type UpstreamResponseEvent, type UpstreamTryEvent } from '../events.js';
import { CollectedFamily, CounterFamily, HistogramFamily, type Cell, type HistogramCell } from './series.js';

/** What metrics read from the running usher when scraped. */
export interface MetricsHost {
  readonly runtime: { readonly clusters: ReadonlyMap<string, Cluster>; readonly caches: CacheStores };
  readonly inflight: number;
  readonly reloadCounts: { readonly success: number; readonly failure: number };
  /** Tracing's span accounting, when tracing is on. */
  readonly tracer: { readonly counts: { exported: number; dropped: number; failed: number; queued: number } } | null;
  /** Certificates served by the proxy listeners: listener address, certificate names, source (file, acme), expiry (epoch ms). */
  certificates(): { listener: string; names: string; source: string; notAfter: number }[];
  /** With ACME in Redis: whether the store answers (1) or not (0); undefined otherwise. */
  acmeStoreUp(): number | undefined;
}

/** Latency buckets in seconds: 1 ms to 30 s. */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Queue times start far below a millisecond (a pooled connection is free at once): 100 µs to 10 s. */
const QUEUE_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CLASSES = ['', '1xx', '2xx', '3xx', '4xx', '5xx'];

export const statusClass = (status: number): string => (status >= 100 && status < 600 ? CLASSES[Math.floor(status / 100)]! : '');

/** The protocol label: h1 (HTTP/1.0 and 1.1) or h2, index 0 or 1 — two values, whatever clients send. */
const PROTOCOLS = ['h1', 'h2'] as const;

interface RouteMeters {
  readonly owner: Metrics;
  /** requests_total with reason "" by protocol × status class (protocol * 6 + status / 100; class 0: no status), bound on first use. */
  readonly byClass: (Cell | undefined)[];
  /** requests_total with a reason: bound on first use (local replies and errors). */
  readonly withReason: Map<string, Cell>;
  /** By protocol, bound on first use. */
  readonly duration: (HistogramCell | undefined)[];
  readonly ttfb: (HistogramCell | undefined)[];
  readonly bytesIn: Cell;
  readonly bytesOut: Cell;
  readonly name: string;
}

interface ClusterMeters {
  readonly owner: Metrics;
  readonly duration: HistogramCell;
  readonly ttfb: HistogramCell;
  readonly overloaded: Cell;
  readonly retries: Map<string, Cell>;
  readonly queue: HistogramCell;
}

interface EndpointMeters {
  readonly owner: Metrics;
  readonly tries: Cell;
  readonly responses: Cell[];
  readonly connectErrors: Map<string, Cell>;
  readonly ejections: Cell;
  readonly checksOk: Cell;
  readonly checksFailed: Cell;
}

interface ListenerMeters {
  readonly accepted: Cell;
  readonly open: Cell;
  readonly handshakes: Cell;
  readonly failures: Map<string, Cell>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly host: MetricsHost;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly listeners = new WeakMap<object, ListenerMeters>();

  readonly requests = new CounterFamily('usher_requests_total', 'Requests answered, by route, status class, reason code ("" when proxied as is) and protocol (h1, h2).', ['route', 'status_class', 'reason', 'protocol']);
  readonly duration = new HistogramFamily('usher_request_duration_seconds', 'From the request head to the end of the response, by route and protocol (h1, h2).', ['route', 'protocol'], SECONDS);
  readonly ttfb = new HistogramFamily('usher_request_ttfb_seconds', 'From the request head to the response head going downstream, by route and protocol (h1, h2).', ['route', 'protocol'], SECONDS);
  readonly bytesIn = new CounterFamily('usher_downstream_received_bytes_total', 'Bytes read from clients, by route (HTTP/1.x; HTTP/2 streams share a connection and are not counted).', ['route']);
  readonly bytesOut = new CounterFamily('usher_downstream_sent_bytes_total', 'Bytes written to clients, by route (HTTP/1.x).', ['route']);
  readonly upstreamDuration = new HistogramFamily('usher_upstream_duration_seconds', 'From the first try to the end of the proxied response, by upstream.', ['upstream'], SECONDS);
  readonly upstreamTtfb = new HistogramFamily('usher_upstream_ttfb_seconds', "From the first try to the upstream's response head, by upstream.", ['upstream'], SECONDS);
  readonly tries = new CounterFamily('usher_upstream_tries_total', 'Tries sent to an upstream server (retries included).', ['upstream', 'server']);
  readonly responses = new CounterFamily('usher_upstream_responses_total', 'Tries that ended with a response head that was used, by status class (a retried 5xx is not counted here).', ['upstream', 'server', 'status_class']);
  readonly connectErrors = new CounterFamily('usher_upstream_connect_errors_total', 'Tries that failed before a connection was made, by reason code.', ['upstream', 'server', 'reason']);
  readonly retries = new CounterFamily('usher_upstream_retries_total', 'Retries, by upstream and the reason code of the failed try.', ['upstream', 'reason']);
  readonly queue = new HistogramFamily(
    'usher_upstream_queue_seconds',
    "How long a try waited for a connection to send on, by upstream: the circuit breaker's queue (first tries), the connection pool's queue, and a new connection's connect and TLS handshake.",
    ['upstream'],
    QUEUE_SECONDS,
  );
  readonly overloaded = new CounterFamily('usher_upstream_overloaded_total', 'Requests the circuit breaker refused (503 upstream_overloaded), by upstream.', ['upstream']);
  readonly ejections = new CounterFamily('usher_upstream_ejections_total', 'Passive health (outlier detection) ejections, by server.', ['upstream', 'server']);
  readonly checks = new CounterFamily('usher_health_checks_total', 'Active health checks, by server and result (ok, failed).', ['upstream', 'server', 'result']);
  readonly checkDuration = new HistogramFamily('usher_health_check_duration_seconds', 'Active health check latency, by upstream.', ['upstream'], SECONDS);
  readonly accepted = new CounterFamily('usher_connections_accepted_total', 'Connections accepted by a proxy listener, by listener and protocol (http, https).', ['listener', 'protocol']);
  readonly open = new CounterFamily('usher_connections_open', 'Connections open on a proxy listener now.', ['listener', 'protocol']);
  readonly handshakes = new CounterFamily('usher_tls_handshakes_total', 'TLS handshakes completed, by listener.', ['listener']);
  readonly handshakeFailures = new CounterFamily('usher_tls_handshake_failures_total', 'TLS handshakes that failed, by listener and error code.', ['listener', 'error']);

  constructor(host: MetricsHost) {
    this.host = host;
    const collected = [
      new CollectedFamily('usher_inflight_requests', 'Requests in flight now.', 'gauge', [], () => [[[], host.inflight]]),
      new CollectedFamily('usher_reloads_total', 'Config reloads (SIGHUP, a saved file, POST /config/apply), by result (success, failure).', 'counter', ['result'], () => [
        [['success'], host.reloadCounts.success],
        [['failure'], host.reloadCounts.failure],
      ]),
      new CollectedFamily('usher_upstream_server_up', 'Whether a server is healthy now (1) or not (0): active checks and passive ejection.', 'gauge', ['upstream', 'server'], () => this.perServer((e) => (e.healthyNow() ? 1 : 0))),
      new CollectedFamily('usher_upstream_server_inflight', 'Requests in flight on a server now.', 'gauge', ['upstream', 'server'], () => this.perServer((e) => e.inflight)),
      new CollectedFamily('usher_upstream_server_weight', 'The effective weight of a server now (slow start and admin overrides included).', 'gauge', ['upstream', 'server'], () => this.perServer((e) => e.weight)),
      // The cache's counters live on its stores (a hit costs no metric work); read when scraped.
      new CollectedFamily('usher_cache_hits_total', 'Requests answered from a cache store (stale answers included), by store.', 'counter', ['store'], () => this.perStore((c) => c.stats.hits)),
      new CollectedFamily('usher_cache_misses_total', 'Cache lookups that went upstream (nothing stored, another variant, stale, or the request asked), by store.', 'counter', ['store'], () => this.perStore((c) => c.stats.misses)),
      new CollectedFamily('usher_cache_stale_total', 'Answers with a stale response (stale-while-revalidate, stale-if-error), by store.', 'counter', ['store'], () => this.perStore((c) => c.stats.stale)),
      new CollectedFamily('usher_cache_stores_total', 'Responses stored, by store.', 'counter', ['store'], () => this.perStore((c) => c.stats.stores)),
      new CollectedFamily('usher_cache_evictions_total', 'Keys evicted to stay within max_size, by store.', 'counter', ['store'], () => this.perStore((c) => c.stats.evictions)),
      new CollectedFamily('usher_cache_stored_bytes', 'Bytes a store holds now (memory: bodies and fields; disk: its files), by store and type.', 'gauge', ['store', 'type'], () => this.perStore((c) => c.bytes, true)),
      new CollectedFamily('usher_cache_l2_hits_total', 'Memory misses found in the store\'s shared L2 (Redis), by store.', 'counter', ['store'], () => this.perL2((l) => l.stats.hits)),
      new CollectedFamily('usher_cache_l2_misses_total', 'Memory misses not found in the L2 (absent, Redis down or slower than its timeout), by store.', 'counter', ['store'], () => this.perL2((l) => l.stats.misses)),
      new CollectedFamily('usher_cache_l2_errors_total', 'L2 commands that failed or timed out (each is a miss or a skipped write, never a client error), by store.', 'counter', ['store'], () => this.perL2((l) => l.stats.errors)),
      new CollectedFamily('usher_cache_l2_writes_total', 'Responses written to the L2, by store.', 'counter', ['store'], () => this.perL2((l) => l.stats.writes)),
      new CollectedFamily('usher_cache_stored_objects', 'Stored responses (each variant counts) a store holds now, by store and type.', 'gauge', ['store', 'type'], () => this.perStore((c) => c.objects, true)),
      new CollectedFamily('usher_tracing_spans_total', 'Spans recorded for export, by result: exported (the collector took them), dropped (the queue was full), failed (an export failed).', 'counter', ['result'], () => {
        const c = host.tracer?.counts;
        return c === undefined ? [] : [[['exported'], c.exported], [['dropped'], c.dropped], [['failed'], c.failed]];
      }),
      new CollectedFamily('usher_tracing_queued_spans', 'Spans waiting for export now.', 'gauge', [], () => (host.tracer === null ? [] : [[[], host.tracer.counts.queued]])),
      new CollectedFamily('usher_tls_certificate_expiry_timestamp_seconds', 'When a certificate served by a listener expires (Unix time), by listener, names and source (file, acme).', 'gauge', ['listener', 'names', 'source'], () =>
        host.certificates().map((c) => [[c.listener, c.names, c.source], Math.floor(c.notAfter / 1000)] as const),
      ),
      new CollectedFamily('usher_acme_store_up', 'With acme.storage in Redis: whether the store answers now (1) or not (0: certificates already loaded stay served, nothing is ordered).', 'gauge', [], () => {
        const up = host.acmeStoreUp();
        return up === undefined ? [] : [[[], up]];
      }),
    ];
    // Registry.registerMetric takes anything with name, help, type and get(): the families are such.
    const families = [
      this.requests, this.duration, this.ttfb, this.bytesIn, this.bytesOut, this.upstreamDuration, this.upstreamTtfb, this.queue, this.tries, this.responses,
      this.connectErrors, this.retries, this.overloaded, this.ejections, this.checks, this.checkDuration, this.accepted, this.open, this.handshakes,
      this.handshakeFailures, ...collected,
    ];
    for (const f of families) this.registry.registerMetric(f as unknown as Parameters<Registry['registerMetric']>[0]);
    collectDefaultMetrics({ register: this.registry, prefix: 'usher_' });
    this.subscribe(CHANNELS.done, this.onDone);
    this.subscribe(CHANNELS.upstreamTry, this.onTry);
    this.subscribe(CHANNELS.upstreamResponse, this.onResponse);
    this.subscribe(CHANNELS.connectError, this.onConnectError);
    this.subscribe(CHANNELS.retry, this.onRetry);
    this.subscribe(CHANNELS.upstreamConnected, this.onConnected);
    this.subscribe(LISTENER_CHANNELS.connection, this.onConnection);
    this.subscribe(LISTENER_CHANNELS.tls, this.onTls);
    this.subscribe(HEALTH_CHANNEL, this.onHealth);
    this.subscribe(PROBE_CHANNEL, this.onProbe);
  }

  private *perL2(read: (l: SecondLevel) => number): Iterable<readonly [readonly string[], number]> {
    for (const [name, c] of this.host.runtime.caches.all()) if (c.l2 !== undefined) yield [[name], read(c.l2)] as const;
  }

  private *perStore(read: (c: CacheStore) => number, withType = false): Iterable<readonly [readonly string[], number]> {
    for (const [name, c] of this.host.runtime.caches.all()) yield [withType ? [name, c.kind] : [name], read(c)] as const;
  }

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
  }

  /** A reload dropped these routes and upstreams: their series go (a route of the same name keeps counting). */
  forget(routes: readonly string[], upstreams: readonly string[]): void {
    if (routes.length > 0) {
      const gone = new Set(routes);
      for (const f of [this.requests, this.duration, this.ttfb, this.bytesIn, this.bytesOut]) f.remove((l) => gone.has(l.route!));
    }
    if (upstreams.length > 0) {
      const gone = new Set(upstreams);
      for (const f of [this.upstreamDuration, this.upstreamTtfb, this.queue, this.tries, this.responses, this.connectErrors, this.retries, this.overloaded, this.ejections, this.checks, this.checkDuration]) {
        f.remove((l) => gone.has(l.upstream!));
      }
    }
  }

  /** Requests a route answered so far, by status class ("none": no status was sent); null before its first. */
  routeCounts(route: CompiledRoute): Record<string, number> | null {
    const m = route.meters.value as RouteMeters | null;
    if (m === null || m.owner !== this) return null;
    const out: Record<string, number> = { total: 0, '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 };
    const add = (cls: number, n: number) => {
      out[CLASSES[cls] || 'none']! += n;
      out.total! += n;
    };
    m.byClass.forEach((cell, i) => {
      if (cell !== undefined) add(i % CLASSES.length, cell.value);
    });
    for (const [key, cell] of m.withReason) add(Number(key[1]), cell.value);
    return out;
  }

  private subscribe(channel: string, fn: (message: unknown) => void): void {
    diagnostics.subscribe(channel, fn);
    this.unsubscribe.push(() => diagnostics.unsubscribe(channel, fn));
  }

  private *perServer(value: (e: Endpoint) => number): Iterable<readonly [readonly string[], number]> {
    for (const c of this.host.runtime.clusters.values()) for (const e of c.endpoints) yield [[c.name, e.id], value(e)];
  }

  // ---- binding (once per object) ----------------------------------------------------------------

  private unrouted: RouteMeters | null = null;

  private routeMeters(route: CompiledRoute | undefined): RouteMeters {
    if (route === undefined) return (this.unrouted ??= this.bindRoute(''));
    const m = route.meters.value as RouteMeters | null;
    if (m !== null && m.owner === this) return m;
    const bound = this.bindRoute(route.name);
    route.meters.value = bound;
    return bound;
  }

  private bindRoute(name: string): RouteMeters {
    return {
      owner: this,
      name,
      byClass: new Array<Cell | undefined>(CLASSES.length * PROTOCOLS.length),
      withReason: new Map(),
      duration: [undefined, undefined],
      ttfb: [undefined, undefined],
      bytesIn: this.bytesIn.child(name),
      bytesOut: this.bytesOut.child(name),
    };
  }

  private clusterMeters(c: Cluster): ClusterMeters {
    const m = c.meters as ClusterMeters | null;
    if (m !== null && m.owner === this) return m;
    const bound: ClusterMeters = {
      owner: this,
      duration: this.upstreamDuration.child(c.name),
      ttfb: this.upstreamTtfb.child(c.name),
      overloaded: this.overloaded.child(c.name),
      retries: new Map(),
      queue: this.queue.child(c.name),
    };
    c.meters = bound;
    return bound;
  }

  private endpointMeters(upstream: string, e: Endpoint): EndpointMeters {
    const m = e.meters as EndpointMeters | null;
    if (m !== null && m.owner === this) return m;
    const bound: EndpointMeters = {
      owner: this,
      tries: this.tries.child(upstream, e.id),
      responses: CLASSES.map((c) => this.responses.child(upstream, e.id, c)),
      connectErrors: new Map(),
      ejections: this.ejections.child(upstream, e.id),
      checksOk: this.checks.child(upstream, e.id, 'ok'),
      checksFailed: this.checks.child(upstream, e.id, 'failed'),
    };
    e.meters = bound;
    return bound;
  }

  private listenerMeters(ev: { listener: object; address: string }, tls: boolean): ListenerMeters {
    let m = this.listeners.get(ev.listener);
    if (m === undefined) {
      const protocol = tls ? 'https' : 'http';
      m = {
        accepted: this.accepted.child(ev.address, protocol),
        open: this.open.child(ev.address, protocol),
        handshakes: this.handshakes.child(ev.address),
        failures: new Map(),
      };
      this.listeners.set(ev.listener, m);
    }
    return m;
  }

  // ---- subscribers (the request path) -----------------------------------------------------------

  private readonly onDone = (message: unknown): void => {
    const ev = message as DoneEvent;
    if (ev.server !== this.host) return;
    const ctx = ev.ctx;
    const m = this.routeMeters(ctx.route);
    const status = ev.status;
    const cls = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    const p = ctx.httpVersion === '2' ? 1 : 0;
    if (ev.reason === null) {
      const i = p * CLASSES.length + cls;
      (m.byClass[i] ??= this.requests.child(m.name, CLASSES[cls]!, '', PROTOCOLS[p])).value++;
    } else {
      const key = `${p}${cls}${ev.reason}`;
      let cell = m.withReason.get(key);
      if (cell === undefined) m.withReason.set(key, (cell = this.requests.child(m.name, CLASSES[cls]!, ev.reason, PROTOCOLS[p])));
      cell.value++;
    }
    const t = ctx.timings;
    (m.duration[p] ??= this.duration.child(m.name, PROTOCOLS[p])).observe(ev.durationMs / 1000);
    if (t.responseStart !== undefined) (m.ttfb[p] ??= this.ttfb.child(m.name, PROTOCOLS[p])).observe((t.responseStart - t.start) / 1000);
    if (ev.bytesIn !== null) m.bytesIn.value += ev.bytesIn;
    if (ev.bytesOut !== null) m.bytesOut.value += ev.bytesOut;
    const cluster = (ctx as { cluster?: Cluster }).cluster;
    if (cluster === undefined) return;
    if (ev.reason === 'upstream_overloaded') this.clusterMeters(cluster).overloaded.value++;
    const response = ctx.response;
    if (t.upstreamStart === undefined || response === undefined || response.local) return;
    const cm = this.clusterMeters(cluster);
    cm.duration.observe((t.end! - t.upstreamStart) / 1000);
    if (t.responseStart !== undefined) cm.ttfb.observe((t.responseStart - t.upstreamStart) / 1000);
  };

  private readonly onTry = (message: unknown): void => {
    const ev = message as UpstreamTryEvent;
    if (ev.server === this.host) this.endpointMeters(ev.upstream, ev.endpoint).tries.value++;
  };

  private readonly onResponse = (message: unknown): void => {
    const ev = message as UpstreamResponseEvent;
    if (ev.server !== this.host) return;
    const s = ev.status;
    this.endpointMeters(ev.upstream, ev.endpoint).responses[s >= 100 && s < 600 ? (s / 100) | 0 : 0]!.value++;
  };

  private readonly onConnected = (message: unknown): void => {
    const ev = message as UpstreamConnectedEvent;
    if (ev.server === this.host) this.clusterMeters(ev.cluster).queue.observe(ev.waitMs / 1000);
  };

  private readonly onConnectError = (message: unknown): void => {
    const ev = message as ConnectErrorEvent;
    if (ev.server !== this.host) return;
    const m = this.endpointMeters(ev.upstream, ev.endpoint);
    let cell = m.connectErrors.get(ev.reason);
    if (cell === undefined) m.connectErrors.set(ev.reason, (cell = this.connectErrors.child(ev.upstream, ev.endpoint.id, ev.reason)));
    cell.value++;
  };

  private readonly onRetry = (message: unknown): void => {
    const ev = message as RetryEvent;
    if (ev.server !== this.host) return;
    const m = this.clusterMeters(ev.cluster);
    let cell = m.retries.get(ev.reason);
    if (cell === undefined) m.retries.set(ev.reason, (cell = this.retries.child(ev.upstream, ev.reason)));
    cell.value++;
  };

  private readonly onConnection = (message: unknown): void => {
    const ev = message as ConnectionEvent;
    if (ev.server !== this.host) return;
    const m = this.listenerMeters(ev, ev.tls);
    m.accepted.value++;
    m.open.value++;
    ev.socket.once('close', () => m.open.value--);
  };

  private readonly onTls = (message: unknown): void => {
    const ev = message as TlsHandshakeEvent;
    if (ev.server !== this.host) return;
    const m = this.listenerMeters(ev, true);
    if (ev.ok) m.handshakes.value++;
    else {
      const code = ev.error ?? 'error';
      let cell = m.failures.get(code);
      if (cell === undefined) m.failures.set(code, (cell = this.handshakeFailures.child(ev.address, code)));
      cell.value++;
    }
  };

  /** Health events carry no usher: they count for the servers of this usher's current clusters. */
  private readonly onHealth = (message: unknown): void => {
    const ev = message as HealthEvent;
    if (ev.source !== 'passive' || ev.healthy || !ev.state.ejected) return;
    const e = this.findEndpoint(ev.upstream, (x) => x.health === ev.state);
    if (e !== undefined) this.endpointMeters(ev.upstream, e).ejections.value++;
  };

  private readonly onProbe = (message: unknown): void => {
    const ev = message as ProbeEvent;
    const cluster = ev.cluster as Cluster;
    if (this.host.runtime.clusters.get(ev.upstream) !== cluster) return;
    const m = this.endpointMeters(ev.upstream, ev.endpoint as Endpoint);
    if (ev.ok) m.checksOk.value++;
    else m.checksFailed.value++;
    if (ev.latencyMs !== null) this.checkDuration.child(ev.upstream).observe(ev.latencyMs / 1000);
  };

  private findEndpoint(upstream: string, match: (e: Endpoint) => boolean): Endpoint | undefined {
    const c = this.host.runtime.clusters.get(upstream);
    return c?.endpoints.find(match);
  }
}
