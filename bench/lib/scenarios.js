// The load scenarios. Every proxy is started fresh for each (repetition, scenario), so peak
// RSS belongs to one scenario, with `upstream` ('http' → the nginx origin, 'ws' → the Node
// WebSocket echo origin) and `tls` deciding how it is configured.
import { createHmac } from 'node:crypto';

/** The secret of the JWT route (bench/lib/proxies.js) and a token it accepts (HS256, no exp). */
export const BENCH_JWT_SECRET = 'usher bench HS256 secret, 32 bytes or more';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'bench', aud: 'bench' })}`;
const BENCH_JWT = `${unsigned}.${createHmac('sha256', BENCH_JWT_SECRET).update(unsigned).digest('base64url')}`;

// The WAF scenarios (issue 14): requests as a browser sends them (Host a name, not the numeric
// address 920350 scores; User-Agent, Accept, Accept-Language, whose absence the CRS scores at
// paranoia level 2+), so that neither paranoia level 1 nor 4 matches a rule on them: the figure is
// the cost of inspecting a clean request. The proxies under test are nginx alone and nginx with
// ModSecurity + CRS at PL1 and PL4, usher with its WAF on the same CRS at PL1 and PL4 (usher-waf*:
// the WAF on every route), each against its own proxy without a WAF (usher, nginx).
export const WAF_HEADERS = [
  ['Host', 'localhost'],
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'],
  ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['Accept-Language', 'en-US,en;q=0.9'],
];
const WAF_PROXIES = ['usher', 'usher-waf', 'usher-waf-pl4', 'nginx', 'nginx-modsec', 'nginx-modsec-pl4'];

/**
 * 10 KiB of application/x-www-form-urlencoded fields with ordinary values. Words are joined by
 * "_": a space (920273) and "-" (942432, two or more "special" characters) are scored at
 * paranoia level 4, and this body is meant to pass every level.
 */
export const FORM_10K = (() => {
  const words = ['order', 'shipping', 'address', 'customer', 'note', 'delivery', 'window', 'morning', 'gift', 'wrap', 'berlin', 'street', 'floor', 'door', 'code', 'ring', 'twice'];
  let x = 4242;
  const fields = [];
  let size = 0;
  for (let i = 1; size < 10 * 1024; i++) {
    const value = [];
    for (let w = 0; w < 30; w++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      value.push(words[x % words.length]);
    }
    const field = `field_${String(i).padStart(2, '0')}=${value.join('_')}`;
    fields.push(field);
    size += field.length + 1;
  }
  return fields.join('&').slice(0, 10 * 1024).replace(/[_&=]+$/, '');
})();

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
  // The same policy on the Redis store: a redis-server beside the origin (core 0, no
  // persistence), one EVALSHA per request; fail_closed, so that a request that did not get its
  // decision from Redis is an error, not a quiet pass. Against `ratelimit` and `small`: the
  // store's cost in req/s, p99 and CPU per request (issue #13).
  { id: 'ratelimit-redis', title: 'GET 13 B through a rate limit (Redis store, local redis-server), keep-alive', path: '/small-rl-redis', expectBytes: 13, proxies: ['usher'], redis: true },
  // The `small` request with a bearer JWT (HS256) through a route with `auth.jwt` (the token's
  // claims copied to a header): the filter's cost is this scenario against `small` (target: at
  // most 1.15x). One token for the whole run, as a client's session would send it.
  { id: 'jwt', title: 'GET 13 B with a bearer JWT (HS256) through JWT auth, keep-alive', path: '/small-jwt', authorization: `Bearer ${BENCH_JWT}`, expectBytes: 13, proxies: ['usher'] },
  // The `small` request with the admin listener's Prometheus metrics on (issue #15: at most 1.1x
  // the CPU per request of `small` in the same run).
  { id: 'metrics', title: 'GET 13 B with Prometheus metrics on, keep-alive', path: '/small', expectBytes: 13, metrics: true, proxies: ['usher'] },
  // The WAF's cost: nginx-modsec* against nginx in the same scenario (issue 14: ModSecurity + CRS
  // adds about 1.8 ms of CPU per request at PL1, 3.0 ms at PL4; usher's WAF at most a quarter).
  { id: 'waf-small', title: 'GET 13 B with a query string and browser headers, through the WAF', path: '/waf/small?id=42&lang=en&page=2', headers: WAF_HEADERS, expectBytes: 13, proxies: WAF_PROXIES },
  { id: 'waf-post10k', title: 'POST 10 KiB URL-encoded form through the WAF', path: '/waf/post', method: 'POST', headers: WAF_HEADERS, body: FORM_10K, contentType: 'application/x-www-form-urlencoded', expectBytes: 3, proxies: WAF_PROXIES },
];

for (const scenario of SCENARIOS) {
  scenario.kind ??= 'http';
  if (scenario.body !== undefined) scenario.bodyBytes = Buffer.byteLength(scenario.body);
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
