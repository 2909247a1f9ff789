import { isIP } from 'node:net';
import type { ServerConfig, UpstreamConfig } from '../config/types.js';
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
    const targets = resolved.get(url.hostname);
    if (targets === undefined) {
      add(server);
      continue;
    }
    for (const t of targets) {
      const host = isIP(t.address) === 6 ? `[${t.address}]` : t.address;
      const port = t.port !== null ? `:${t.port}` : url.port === '' ? '' : `:${url.port}`;
      const origin = `${url.protocol}//${host}${port}`;
      add({
        ...server,
        url: origin,
        origin,
        authority: server.authority,
        // SRV weights are relative shares too (0 is "rarely": here the smallest weight, 1).
        weight: t.weight === null ? server.weight : Math.min(1000, Math.max(1, t.weight)),
        priority: t.priority === null ? server.priority : server.priority + t.priority,
      });
    }
  }
  return out;
}
