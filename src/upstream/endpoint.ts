import { Pool } from 'undici';
import type { ServerConfig, UpstreamConfig } from '../config/types.js';
import type { BalancerEndpoint } from './balancer.js';
import { EndpointHealth } from './health/state.js';
import { SlowStart } from './slow-start.js';

/** Shared by a cluster's endpoints: set while the cluster balances in panic mode (see priority.ts). */
export interface PanicState {
  on: boolean;
}
const NEVER_PANIC: PanicState = Object.freeze({ on: false });
import { upstreamConnect, upstreamServername } from '../tls/upstream.js';

/** One upstream server: its connection pool and its state. */
export class Endpoint implements BalancerEndpoint {
  readonly id: string;
  /** The configured weight; `weight` is the effective one (slow start ramps it). */
  readonly baseWeight: number;
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
  readonly pool: Pool;
  /**
   * https only: given with every request so that undici never derives one from the client's Host
   * (a change of servername would also close the pooled connection). The connector sends the
   * server's own name whatever this is; for an IP it is the IP, which undici keeps constant.
   */
  readonly servername: string | undefined;
  /** Requests dispatched and not yet finished (for least_request and the admin API later). */
  inflight = 0;
  private healthy = true;

  constructor(server: ServerConfig, upstream: UpstreamConfig) {
    this.id = server.url;
    this.baseWeight = server.weight;
    this.server = server;
    this.health = new EndpointHealth(upstream.name, server.url);
    this.slowStart = new SlowStart(upstream.slow_start);
    this.health.onRecover = this.slowStart.begin;
    this.maxRequests = server.max_requests ?? Infinity;
    this.origin = server.origin;
    this.authority = server.authority;
    this.servername = server.origin.startsWith('https:') ? (upstreamServername(server, upstream) ?? new URL(server.origin).hostname) : undefined;
    this.pool = new Pool(server.origin, {
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
    });
  }

  get weight(): number {
    return this.slowStart.active ? this.slowStart.scale(this.baseWeight) : this.baseWeight;
  }

  /** Healthy by every producer, whatever the cluster's panic mode says. */
  healthyNow(): boolean {
    return this.healthy && this.health.up;
  }

  available(): boolean {
    return (this.panic.on || (this.healthy && this.health.up)) && this.inflight < this.maxRequests;
  }

  hasCapacity(): boolean {
    return this.inflight < this.maxRequests;
  }

  /** Health producers (active checks, outlier detection — the upstreams issue) set this. */
  setHealthy(healthy: boolean): void {
    this.healthy = healthy;
  }

  /** Graceful: waits for in-flight requests, then closes idle connections. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}

/** h2c (cleartext HTTP/2 by prior knowledge): undici's useH2c, which Pool only passes on inside `connect`. */
function withH2c<C extends object>(connect: C, protocol: UpstreamConfig['protocol']): C | (C & { useH2c: true }) {
  return protocol === 'h2c' && typeof connect !== 'function' ? { ...connect, useH2c: true } : connect;
}
