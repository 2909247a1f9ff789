import type { UpstreamConfig } from '../config/types.js';
import type { Balancer, PickContext } from './balancer.js';
import { roundRobin } from './balancers/round-robin/index.js';
import { Endpoint } from './endpoint.js';

/**
 * An upstream: its endpoints and the balancer over them. This is the only thing the proxy
 * stage talks to. Clusters survive reloads when their config did not change (see runtime).
 */
export class Cluster {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly endpoints: readonly Endpoint[];
  /** "preserve" → undefined (keep the client's Host); otherwise the Host to send, per endpoint or literal. */
  readonly hostMode: 'preserve' | 'upstream' | 'literal';
  private readonly balancer: Balancer<Endpoint>;
  /** A JSON fingerprint of the config, to reuse the cluster across reloads when unchanged. */
  readonly fingerprint: string;

  constructor(config: UpstreamConfig) {
    this.name = config.name;
    this.config = config;
    this.endpoints = Object.freeze(config.servers.map((s) => new Endpoint(s, config)));
    this.balancer = roundRobin(this.endpoints);
    this.hostMode = config.host_header === 'preserve' ? 'preserve' : config.host_header === 'upstream' ? 'upstream' : 'literal';
    this.fingerprint = Cluster.fingerprint(config);
  }

  static fingerprint(config: UpstreamConfig): string {
    const { source: _source, ...rest } = config;
    return JSON.stringify(rest);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    return this.balancer.pick(ctx);
  }

  /** The Host header value for a request sent to `endpoint`; undefined keeps the client's. */
  hostFor(endpoint: Endpoint): string | undefined {
    if (this.hostMode === 'preserve') return undefined;
    return this.hostMode === 'upstream' ? endpoint.authority : this.config.host_header;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.endpoints.map((e) => e.close()));
  }

  async destroy(): Promise<void> {
    await Promise.allSettled(this.endpoints.map((e) => e.destroy()));
  }
}
