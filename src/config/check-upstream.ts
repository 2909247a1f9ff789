// Semantic checks of the upstreams issue's options (balancing, health, retries, limits),
// called from checkUpstreams in check.ts. Same rules: read defensively, precise paths.
import { isIP } from 'node:net';
import type { Issues, Segment } from './issues.js';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);
type ErrorFn = (path: Segment[], message: string, hint?: string, at?: 'key' | 'value') => void;

export function checkUpstreamOptions(name: string, up: Rec, issues: Issues, error: ErrorFn): void {
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
