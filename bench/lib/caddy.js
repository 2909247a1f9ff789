// Caddy as a proxy under test, from a JSON config (Caddy's native format: every setting is
// explicit, no Caddyfile adapter guessing). Caddy is a Go program: GOMAXPROCS=1 keeps its
// scheduler on one OS thread running Go code, like nginx's one worker and HAProxy's nbthread 1,
// and taskset pins the process (all its threads) to the proxy core.
//
// Changed from Caddy's defaults, so it proxies the way the others do (bench/README.md):
// - admin API off (`admin.disabled`), no autosave of the config, no automatic HTTPS (no ACME,
//   no :80 redirect listener), config and data dirs inside the run's temp dir;
// - `protocols: ["h1"]`: HTTP/1.1 only downstream — no HTTP/2 (Caddy's default with TLS) and no
//   HTTP/3 listener on UDP (default with TLS in 2.6); the clients speak HTTP/1.1 to everyone;
// - upstream transport HTTP/1.1 only (`versions: ["1.1"]`), keep-alive on with up to 64 idle
//   connections (Caddy's default is 32 per host: with 50 client connections the rest would be
//   closed and reopened; nginx is given `keepalive 64`); `compression: false`, else Go's
//   transport adds `Accept-Encoding: gzip` to every upstream request (seen at a test origin);
// - logs: no access log (Caddy writes none unless a server asks for it) and the default
//   logger at ERROR, as nginx's `error_log stderr warn`, so start-up failures still show.
import fs from 'node:fs';
import path from 'node:path';
import { startProcess } from './procs.js';

/** @param {{ dir: string, port: number, tls: { cert: string, key: string } | null, upstreamPort: number }} ctx */
export function caddyConfig({ port, tls, upstreamPort }) {
  const server = {
    listen: [`127.0.0.1:${port}`],
    protocols: ['h1'],
    automatic_https: { disable: true },
    routes: [
      {
        handle: [
          {
            handler: 'reverse_proxy',
            upstreams: [{ dial: `127.0.0.1:${upstreamPort}` }],
            transport: {
              protocol: 'http',
              versions: ['1.1'],
              // Go's transport otherwise adds `Accept-Encoding: gzip` upstream and gunzips.
              compression: false,
              keep_alive: { enabled: true, max_idle_conns: 64, max_idle_conns_per_host: 64 },
            },
          },
        ],
      },
    ],
  };
  const config = {
    admin: { disabled: true, config: { persist: false } },
    logging: { logs: { default: { level: 'ERROR' } } },
    apps: { http: { servers: { bench: server } } },
  };
  if (tls) {
    // One policy matching every connection makes the listener TLS; the certificate is ours.
    server.tls_connection_policies = [{}];
    config.apps.tls = { certificates: { load_files: [{ certificate: tls.cert, key: tls.key }] } };
  }
  return config;
}

export function startCaddy(ctx) {
  const file = path.join(ctx.dir, 'caddy.json');
  fs.writeFileSync(file, `${JSON.stringify(caddyConfig(ctx), null, 2)}\n`);
  const env = {
    ...process.env,
    GOMAXPROCS: '1',
    // Caddy keeps certificates and state under $XDG_DATA_HOME/caddy and $XDG_CONFIG_HOME/caddy.
    XDG_DATA_HOME: path.join(ctx.dir, 'data'),
    XDG_CONFIG_HOME: path.join(ctx.dir, 'config'),
  };
  return startProcess('caddy', ['run', '--config', file], { cpu: ctx.cpu, env, name: 'caddy' });
}
