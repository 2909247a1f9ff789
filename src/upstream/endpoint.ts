import { Pool } from 'undici';
import type { ServerConfig, UpstreamConfig } from '../config/types.js';
import type { BalancerEndpoint } from './balancer.js';
import { upstreamConnect, upstreamServername } from '../tls/upstream.js';

/** One upstream server: its connection pool and its state. */
export class Endpoint implements BalancerEndpoint {
  readonly id: string;
  readonly weight: number;
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
    this.weight = server.weight;
    this.origin = server.origin;
    this.authority = server.authority;
    this.servername = server.origin.startsWith('https:') ? (upstreamServername(server, upstream) ?? new URL(server.origin).hostname) : undefined;
    this.pool = new Pool(server.origin, {
      connections: upstream.pool.max_connections,
      pipelining: 1,
      keepAliveTimeout: upstream.pool.keep_alive_timeout,
      keepAliveMaxTimeout: upstream.pool.keep_alive_timeout,
      connect: upstreamConnect(server, upstream),
      headersTimeout: upstream.timeouts.response_header,
      bodyTimeout: upstream.timeouts.body_idle,
      // The upstream's response head may be as large as what we accept downstream, not more.
      maxHeaderSize: 64 * 1024,
      strictContentLength: true,
    });
  }

  available(): boolean {
    return this.healthy;
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
