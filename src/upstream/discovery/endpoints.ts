import { isIP } from 'node:net';
import type { ServerConfig, UpstreamConfig } from '../../config/types.js';
import { Endpoint } from '../endpoint.js';
import type { Resolved } from './dns.js';

/** Host names (not IP literals) among the servers: the ones DNS discovery resolves. */
export function namedServers(servers: readonly ServerConfig[]): string[] {
  const names = new Set<string>();
  for (const s of servers) {
    const host = new URL(s.origin).hostname;
    if (isIP(host.replace(/^\[|\]$/g, '')) === 0) names.add(host);
  }
  return [...names];
}

/**
 * The endpoint set for the latest DNS answers: one endpoint per address of each named server
 * (same weight, priority and limits; Host stays the name), the others as configured. Endpoints
 * that already exist are kept, with their pools and health.
 */
export function discoveredEndpoints(config: UpstreamConfig, current: readonly Endpoint[], resolved: Resolved): Endpoint[] {
  const byId = new Map(current.map((e) => [e.id, e]));
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  const add = (server: ServerConfig) => {
    if (seen.has(server.url)) return;
    seen.add(server.url);
    out.push(byId.get(server.url) ?? new Endpoint(server, config));
  };
  for (const server of config.servers) {
    const url = new URL(server.origin);
    const addresses = resolved.get(url.hostname);
    if (addresses === undefined) {
      add(server);
      continue;
    }
    for (const address of addresses) {
      const host = isIP(address) === 6 ? `[${address}]` : address;
      const origin = `${url.protocol}//${host}${url.port === '' ? '' : `:${url.port}`}`;
      add({ ...server, url: origin, origin, authority: server.authority });
    }
  }
  return out;
}
