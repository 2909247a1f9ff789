// The load scenarios. Every proxy is started fresh for each (repetition, scenario), so peak
// RSS belongs to one scenario, with `upstream` ('http' → the nginx origin, 'ws' → the Node
// WebSocket echo origin) and `tls` deciding how it is configured.
import { createHmac } from 'node:crypto';

/** The secret of the JWT route (bench/lib/proxies.js) and a token it accepts (HS256, no exp). */
export const BENCH_JWT_SECRET = 'usher bench HS256 secret, 32 bytes or more';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'bench', aud: 'bench' })}`;
const BENCH_JWT = `${unsigned}.${createHmac('sha256', BENCH_JWT_SECRET).update(unsigned).digest('base64url')}`;

export const SCENARIOS = [
  { id: 'small', title: 'GET 13 B, keep-alive', path: '/small', expectBytes: 13 },
  { id: '100k', title: 'GET 100 KiB, keep-alive', path: '/100k', expectBytes: 100 * 1024 },
  // The proxy compresses (usher's `compress:`, nginx's `gzip on`) at the same gzip level; proxies
  // that cannot compress are reported n/a by the check (no Content-Encoding: gzip).
  { id: 'gzip100k', title: 'GET 100 KiB text, gzipped by the proxy (level 5)', path: '/text100k', acceptEncoding: 'gzip', gzipLevel: 5, expectBytes: 100 * 1024 },
  { id: 'post10k', title: 'POST 10 KiB, keep-alive', path: '/post', method: 'POST', bodyBytes: 10 * 1024, expectBytes: 3 },
  { id: 'tls', title: 'GET 13 B over TLS, keep-alive', path: '/small', tls: true, expectBytes: 13 },
  { id: 'close', title: 'GET 13 B, new connection per request', path: '/small', close: true, expectBytes: 13 },
  { id: 'ws', title: 'WebSocket echo round trip (32 B)', kind: 'ws' },
  // The `small` request through a route with a rate limit (local store, never refusing): the
  // filter's cost is this scenario against `small` (target: at most 1.15x the CPU per request).
  // The `small` body answered from the proxy's cache (the origin says max-age=3600; the warm-up
  // fills it): usher's `cache:` (memory store) and nginx's proxy_cache. Target: at most half of
  // usher's own `small` CPU per request, and at most 2.5x nginx's cache hit.
  { id: 'cachehit', title: 'GET 13 B cache hit, keep-alive', path: '/small-cached', expectBytes: 13, proxies: ['usher', 'nginx'] },
  { id: 'ratelimit', title: 'GET 13 B through a rate limit (local store), keep-alive', path: '/small-rl', expectBytes: 13, proxies: ['usher'] },
  // The `small` request with a bearer JWT (HS256) through a route with `auth.jwt` (the token's
  // claims copied to a header): the filter's cost is this scenario against `small` (target: at
  // most 1.15x). One token for the whole run, as a client's session would send it.
  { id: 'jwt', title: 'GET 13 B with a bearer JWT (HS256) through JWT auth, keep-alive', path: '/small-jwt', authorization: `Bearer ${BENCH_JWT}`, expectBytes: 13, proxies: ['usher'] },
  // The `small` request with the admin listener's Prometheus metrics on (issue #15: at most 1.1x
  // the CPU per request of `small` in the same run).
  { id: 'metrics', title: 'GET 13 B with Prometheus metrics on, keep-alive', path: '/small', expectBytes: 13, metrics: true, proxies: ['usher'] },
];

for (const scenario of SCENARIOS) {
  scenario.kind ??= 'http';
  scenario.upstream = scenario.kind === 'ws' ? 'ws' : 'http';
}

export function selectScenarios(ids) {
  if (!ids) return SCENARIOS;
  return ids.map((id) => {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`unknown scenario "${id}" (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
    return scenario;
  });
}
