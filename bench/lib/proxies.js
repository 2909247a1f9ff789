// The proxies under test and how each is started for one (repetition, scenario): a fresh
// process pinned alone to PROXY_CPU, listening on `port` (TLS when `tls` is given), forwarding
// everything to one upstream on 127.0.0.1:`upstreamPort` over keep-alive.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCaddy } from './caddy.js';
import { proxyConf, startNginx } from './nginx.js';
import { startProcess } from './procs.js';
import { BENCH_JWT_SECRET } from './scenarios.js';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = path.dirname(BENCH_DIR);
export const PROXY_CPU = 1;

/**
 * kind: 'floor' (no proxy), 'pipe' (a Node TCP pipe: a floor with a process of its own, not an
 * HTTP proxy), 'usher', 'native' (nginx, haproxy, caddy) or 'node' (the Node HTTP proxies).
 * `requires` names an executable that must be installed; `requiresEnv`, an environment variable
 * that must be set (the default list leaves such a proxy out when it is not); `onlyWhenNamed`, a
 * proxy that runs only when --proxies names it.
 */
export const PROXIES = [
  { id: 'direct', label: 'direct (no proxy)', kind: 'floor' },
  { id: 'usher', label: 'usher', kind: 'usher', start: (ctx) => startUsher(ctx) },
  // Another build of usher in the same run (USHER_ALT_ROOT: a checkout of another commit, built):
  // before/after comparisons on one machine at one time, e.g. `--proxies usher,usher-alt,nginx`.
  { id: 'usher-alt', label: 'usher (USHER_ALT_ROOT)', kind: 'usher', requiresEnv: 'USHER_ALT_ROOT', start: (ctx) => startUsher(ctx, process.env.USHER_ALT_ROOT) },
  // This checkout with the plain config usher-alt gets (one route, no rate_limits, auth, caches):
  // what the other sections of the bench config cost the plain `small` route, if anything.
  { id: 'usher-plain', label: 'usher (plain config)', kind: 'usher', onlyWhenNamed: true, start: (ctx) => startUsher(ctx, REPO_DIR, true) },
  { id: 'nginx', label: 'nginx', kind: 'native', requires: 'nginx', start: startNginxProxy },
  { id: 'haproxy', label: 'HAProxy', kind: 'native', requires: 'haproxy', start: startHaproxy },
  { id: 'caddy', label: 'Caddy', kind: 'native', requires: 'caddy', start: (ctx) => startCaddy({ ...ctx, cpu: PROXY_CPU }) },
  { id: 'tcp-pipe', label: 'Node TCP pipe (floor)', kind: 'pipe', start: nodePeer('tcp-pipe.js') },
  { id: 'http-proxy', label: 'http-proxy', kind: 'node', start: nodePeer('http-proxy.js') },
  { id: 'http-proxy-3', label: 'http-proxy-3', kind: 'node', start: nodePeer('http-proxy-3.js') },
  { id: 'fastify', label: '@fastify/http-proxy', kind: 'node', start: nodePeer('fastify-http-proxy.js') },
];

export function selectProxies(ids) {
  if (!ids) return PROXIES.filter((p) => !p.onlyWhenNamed && (p.requiresEnv === undefined || process.env[p.requiresEnv]));
  return ids.map((id) => {
    const proxy = PROXIES.find((p) => p.id === id);
    if (!proxy) throw new Error(`unknown proxy "${id}" (known: ${PROXIES.map((p) => p.id).join(', ')})`);
    return proxy;
  });
}

/** @typedef {{ dir: string, port: number, tls: { cert: string, key: string, pem: string } | null, upstreamPort: number }} StartContext */

/** @param {StartContext} ctx */
function startNginxProxy(ctx) {
  return startNginx(ctx.dir, proxyConf(ctx.dir, ctx), { cpu: PROXY_CPU, name: 'nginx' });
}

/** @param {StartContext} ctx */
function startHaproxy({ dir, port, tls, upstreamPort }) {
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    file,
    `global
  nbthread 1
  maxconn 4096
  tune.ssl.default-dh-param 2048

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout tunnel 1h

frontend usher_bench
  bind 127.0.0.1:${port}${tls ? ` ssl crt ${tls.pem}` : ''}
  default_backend origin

backend origin
  server origin 127.0.0.1:${upstreamPort}
`,
  );
  // -db: stay in the foreground, no master-worker: one process, one thread.
  return startProcess('haproxy', ['-db', '-f', file], { cpu: PROXY_CPU, name: 'haproxy' });
}

function nodePeer(script) {
  /** @param {StartContext} ctx */
  return ({ port, tls, upstreamPort }) => {
    const args = [path.join(BENCH_DIR, 'peers', script), '--port', String(port), '--upstream', `http://127.0.0.1:${upstreamPort}`];
    if (tls) args.push('--cert', tls.cert, '--key', tls.key);
    return startProcess(process.execPath, args, { cpu: PROXY_CPU, name: script });
  };
}

// Never refuses (one load generator, one address): the cost of deciding, not of refusing.
const OWN_SECTIONS = `rate_limits:
  policies: { bench: { rate: 1000000000, per: 1s, key: [client_ip] } }
caches:
  bench: { max_size: 64mb }
`;
const OWN_ROUTES = `  - match: { path: /small-rl }
    upstream: origin
    rate_limits: [bench]
  - match: { path: /small-jwt }
    upstream: origin
    auth: { jwt: { secret: "${BENCH_JWT_SECRET}", audience: bench, claims_to_headers: { sub: x-user } } }
  - match: { path: /small-cached }
    upstream: origin
    cache: bench
`;

/**
 * @param {StartContext} ctx
 * @param {string} root the checkout to run; another commit's gets only the sections every
 *   version knows (no rate_limits, no auth, no compress, no caches), so its ratelimit, jwt, gzip100k and cachehit rows measure nothing new.
 */
function startUsher({ dir, port, tls, upstreamPort, gzipLevel, metrics, workers = 1 }, root = REPO_DIR, plain = false) {
  const own = root === REPO_DIR && !plain;
  const file = path.join(dir, 'usher.yaml');
  const tlsLine = tls ? `\n    tls: { cert: ${tls.cert}, key: ${tls.key} }` : '';
  fs.writeFileSync(
    file,
    `listeners:
  - address: 127.0.0.1:${port}${tlsLine}
upstreams:
  origin:
    servers:
      - url: http://127.0.0.1:${upstreamPort}
${own ? OWN_SECTIONS : ''}routes:
${own ? OWN_ROUTES : ''}  - upstream: origin${own && gzipLevel ? `\n    compress: { algorithms: [gzip], gzip_level: ${gzipLevel} }` : ''}
log: { level: warn, access_log: false }
${metrics && own ? 'admin: { address: 127.0.0.1:0 }\n' : ''}`,
  );
  // `node` itself (not npm) under taskset, so the measured PID is the serving process (with
  // --workers: the primary, whose tree holds the workers). Another commit's build may not know
  // --workers: it gets the option only when it asks for more than one.
  const args = [path.join(root, 'bin', 'usher.js'), 'serve', '--config', file, ...(root === REPO_DIR || workers > 1 ? ['--workers', String(workers)] : [])];
  return startProcess(process.execPath, args, {
    // N workers need N cores: 0..N-1, the load generator's core 0 included (2-core machines).
    cpu: workers > 1 ? `0-${workers - 1}` : PROXY_CPU,
    cwd: root,
    name: 'usher',
  });
}
