// Semantic checks of an upstream as written: server URLs, and the options of the upstreams issue
// (balancing, health, retries, limits). Called from checkUpstreams in src/config/check.ts. Same
// rules as there: read defensively, precise paths.
import { isIP } from 'node:net';
import { parseServerUrl } from '../../config/address.js';
import { isRec, list, type ErrorFn, type Rec } from '../../config/check-kit.js';
import type { Issues, Segment } from '../../config/issues.js';

/** Checks one upstream as written: its servers' URLs (duplicates warned), then its options. */
export function checkUpstream(name: string, up: Rec, issues: Issues, error: ErrorFn): void {
  const origins = new Map<string, number>();
  list(up.servers).forEach((server, j) => {
    const url = typeof server === 'string' ? server : isRec(server) && typeof server.url === 'string' ? server.url : undefined;
    if (url === undefined) return;
    const path: Segment[] = typeof server === 'string' ? ['upstreams', name, 'servers', j] : ['upstreams', name, 'servers', j, 'url'];
    const r = parseServerUrl(url);
    if (!r.ok) return error(path, r.message, r.hint);
    const first = origins.get(r.origin);
    if (first === undefined) origins.set(r.origin, j);
    else {
      issues.warning(path, `duplicate server ${JSON.stringify(url)} (same as servers[${first}])`, {
        hint: 'to send it a larger share of requests, raise its weight',
      });
    }
  });
  checkUpstreamOptions(name, up, issues, error);
}

function checkUpstreamOptions(name: string, up: Rec, issues: Issues, error: ErrorFn): void {
  const base: Segment[] = ['upstreams', name];
  const balance = typeof up.balance === 'string' ? up.balance : 'round_robin';
  for (const [key, wants] of [
    ['hash', 'hash'],
    ['sticky', 'sticky'],
  ] as const) {
    if (up[key] !== undefined && balance !== wants) {
      issues.warning([...base, key], `"${key}" has no effect unless balance is "${wants}" (it is "${balance}")`, { at: 'key' });
    }
  }
  if (up.engine === 'native' && (up.protocol === 'h2' || up.protocol === 'h2c')) {
    error([...base, 'engine'], `expected "undici" for protocol "${up.protocol}": the native client speaks HTTP/1.1 only`, 'remove "engine" or set protocol: http1');
  }
  const hc = up.health_check;
  if (isRec(hc)) {
    if (Array.isArray(hc.expect_status)) {
      hc.expect_status.forEach((s, i) => {
        if (typeof s !== 'string' || !s.includes('-')) return;
        const [lo, hi] = s.split('-').map(Number) as [number, number];
        if (lo > hi) error([...base, 'health_check', 'expect_status', i], `expected a range from low to high like "200-399", got "${s}"`, `write "${hi}-${lo}"`);
      });
    }
    if (typeof hc.expect_body === 'string') {
      try {
        new RegExp(hc.expect_body);
      } catch (err) {
        error([...base, 'health_check', 'expect_body'], `expected a regular expression, got ${JSON.stringify(hc.expect_body)}: ${(err as Error).message}`);
      }
    }
    if (hc.type === 'tcp') {
      for (const key of ['path', 'method', 'host', 'expect_status', 'expect_body']) {
        if (hc[key] !== undefined) issues.warning([...base, 'health_check', key], `"${key}" has no effect on a tcp health check`, { at: 'key' });
      }
    }
  }
  const dns = up.dns;
  if (isRec(dns) && Array.isArray(dns.servers)) {
    dns.servers.forEach((entry, i) => {
      if (typeof entry === 'string' && !isDnsServer(entry)) {
        error([...base, 'dns', 'servers', i], `expected a DNS server address like "10.0.0.2", "10.0.0.2:5353" or "[::1]:53", got ${JSON.stringify(entry)}`);
      }
    });
  }
}

/** What dns.Resolver#setServers accepts: an IP, "ipv4:port" or "[ipv6]:port". */
function isDnsServer(s: string): boolean {
  if (isIP(s) !== 0) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (m === null || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2]!) === 4;
}
