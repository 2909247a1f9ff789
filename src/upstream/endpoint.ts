import { Pool } from 'undici';
import type { ServerConfig, UpstreamConfig } from './config/types.js';
import type { BalancerEndpoint } from './balancer.js';
import { EndpointHealth } from './health/state.js';
import { SlowStart } from './slow-start.js';

/** Shared by a cluster's endpoints: set while the cluster balances in panic mode (see priority.ts). */
export interface PanicState {
  on: boolean;
}
const NEVER_PANIC: PanicState = Object.freeze({ on: false });
import { upstreamConnect, upstreamServername, upstreamTlsOptions } from '../tls/upstream.js';
import { H1Pool, type H1PoolOptions } from './h1/pool.js';
import { acceptUnsolicitedContinue } from './unsolicited-continue.js';
import { readAfterWriteReset } from './write-reset.js';
import { shareAtLeastOne } from './share.js';

/**
 * One upstream server: its connection pool and its state. Building one opens nothing (`usher
 * explain`, `validate` and a rejected reload build endpoints that never go live); the pool is
 * created by start(), when the runtime holding it goes live.
 */
export class Endpoint implements BalancerEndpoint {
  readonly id: string;
  /** The weight balancing starts from: the configured one, or the admin API's override. `weight` is the effective one (slow start ramps it). */
  baseWeight: number;
  /** The weight in the config (baseWeight differs while the admin API overrides it). */
  readonly configuredWeight: number;
  readonly server: ServerConfig;
  readonly health: EndpointHealth;
  readonly slowStart: SlowStart;
  panic: PanicState = NEVER_PANIC;
  /** Outlier detection streaks and ejection timer (health/outlier.ts). */
  outlier5xx = 0;
  outlierConnect = 0;
  outlierTimer: NodeJS.Timeout | null = null;
  /** Circuit breaker: most requests in flight here (Infinity: no limit). */
  readonly maxRequests: number;
  readonly origin: string;
  readonly authority: string;
  /** Created by start(); null before it (see `pool`). */
  private openedPool: Pool | null = null;
  /** engine: native: the proxy's client, created by start() (see `dispatcher`). */
  private openedNative: H1Pool | null = null;
  /** engine: native: what the native pool is built with (null: undici serves the proxy too). */
  private readonly nativeOptions: H1PoolOptions | null;
  private closed = false;
  /** What the pool is built with; computed here so that a bad TLS file fails the build, not start(). */
  private readonly poolOptions: Pool.Options;
  /**
   * https only: given with every request so that undici never derives one from the client's Host
   * (a change of servername would also close the pooled connection). The connector sends the
   * server's own name whatever this is; for an IP it is the IP, which undici keeps constant.
   */
  readonly servername: string | undefined;
  /** Requests dispatched and not yet finished (for least_request and the admin API later). */
  inflight = 0;
  private healthy = true;
  /** Metrics' series for this server, bound on first use (null while metrics are off). */
  meters: unknown = null;

  constructor(server: ServerConfig, upstream: UpstreamConfig) {
    this.id = server.url;
    this.baseWeight = this.configuredWeight = server.weight;
    this.server = server;
    this.health = new EndpointHealth(upstream.name, server.url);
    this.slowStart = new SlowStart(upstream.slow_start);
    this.health.onRecover = this.slowStart.begin;
    // With N workers: this worker's share of the instance-wide limit (share.ts).
    this.maxRequests = server.max_requests === null ? Infinity : shareAtLeastOne(server.max_requests);
    this.origin = server.origin;
    this.authority = server.authority;
    this.servername = server.origin.startsWith('https:') ? (upstreamServername(server, upstream) ?? new URL(server.origin).hostname) : undefined;
    this.poolOptions = {
      connections: upstream.pool.max_connections,
      pipelining: 1,
      keepAliveTimeout: upstream.pool.keep_alive_timeout,
      keepAliveMaxTimeout: upstream.pool.keep_alive_timeout,
      connect: withH2c(upstreamConnect(server, upstream), upstream.protocol),
      headersTimeout: upstream.timeouts.response_header,
      bodyTimeout: upstream.timeouts.body_idle,
      // The upstream's response head may be as large as what we accept downstream, not more.
      maxHeaderSize: 64 * 1024,
      strictContentLength: true,
      // HTTP/2 upstreams (gRPC): h2 by ALPN over TLS, h2c by prior knowledge (undici's useH2c,
      // which Pool only passes on inside `connect`).
      ...(upstream.protocol === 'http1' ? {} : { allowH2: true }),
    };
    const tls = upstreamTlsOptions(server, upstream);
    this.nativeOptions =
      upstream.engine !== 'native' || upstream.protocol !== 'http1'
        ? null
        : {
            origin: server.origin,
            maxConnections: upstream.pool.max_connections,
            keepAliveTimeout: upstream.pool.keep_alive_timeout,
            connectTimeout: upstream.timeouts.connect,
            headersTimeout: upstream.timeouts.response_header,
            bodyTimeout: upstream.timeouts.body_idle,
            // No servername for an IP address (no SNI, RFC 6066 §3): node then verifies the IP.
            tls,
          };
  }

  /**
   * What the proxy dispatches its requests to: the native pool (engine: native) or undici's.
   * Filters that make requests of their own (mirror, forward auth) use `pool`, always undici's.
   */
  get dispatcher(): Pool | H1Pool {
    if (this.nativeOptions === null) return this.pool;
    return this.openedNative ?? this.openNative();
  }

  private openNative(): H1Pool {
    const pool = (this.openedNative = new H1Pool(this.nativeOptions!));
    if (this.closed) void pool.close();
    return pool;
  }

  /**
   * The connection pool. A request only reaches an endpoint of a started cluster, so this is the
   * pool start() made; the fallback covers a request that lands before start() (Usher.start
   * opens listeners one by one, then starts the clusters) by opening it then. A monomorphic
   * getter that V8 inlines: the hot path (one dispatch per request) pays a null check.
   */
  get pool(): Pool {
    return this.openedPool ?? this.open();
  }

  /** Whether a pool exists (for tests: a built-but-not-started endpoint has none). */
  get started(): boolean {
    return this.openedPool !== null || this.openedNative !== null;
  }

  /** Opens the pool (undici connects on the first dispatch). Idempotent. */
  start(): void {
    if (this.nativeOptions !== null) {
      if (this.openedNative === null) this.openNative();
      return;
    }
    if (this.openedPool === null) this.open();
  }

  private open(): Pool {
    // Process-wide and idempotent; here, not in the constructor: building an endpoint opens nothing.
    acceptUnsolicitedContinue();
    readAfterWriteReset();
    const pool = (this.openedPool = new Pool(this.origin, this.poolOptions));
    // Closed before it ever opened, and still asked for (a request on a retired runtime): a
    // closed pool answers ClientClosedError, as the pool would had it been open before.
    if (this.closed) void pool.close();
    return pool;
  }

  get weight(): number {
    return this.slowStart.active ? this.slowStart.scale(this.baseWeight) : this.baseWeight;
  }

  /** Healthy by every producer, whatever the cluster's panic mode says. */
  healthyNow(): boolean {
    return this.healthy && this.health.up;
  }

  available(): boolean {
    // A drained server takes nothing, not even in panic mode.
    return this.healthy && (this.panic.on || this.health.up) && this.inflight < this.maxRequests;
  }

  /** Drained through the admin API: no new request; those in flight finish. */
  get drained(): boolean {
    return !this.healthy;
  }

  hasCapacity(): boolean {
    return this.inflight < this.maxRequests;
  }

  /** false drains the server (the admin API); true takes it back. Health checks do not touch it. */
  setHealthy(healthy: boolean): void {
    this.healthy = healthy;
  }

  /** Graceful: waits for in-flight requests, then closes idle connections. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.openedPool?.close(), this.openedNative?.close()]);
  }

  async destroy(): Promise<void> {
    this.closed = true;
    await Promise.all([this.openedPool?.destroy(), this.openedNative?.destroy()]);
  }
}

/** h2c (cleartext HTTP/2 by prior knowledge): undici's useH2c, which Pool only passes on inside `connect`. */
function withH2c<C extends object>(connect: C, protocol: UpstreamConfig['protocol']): C | (C & { useH2c: true }) {
  return protocol === 'h2c' && typeof connect !== 'function' ? { ...connect, useH2c: true } : connect;
}
