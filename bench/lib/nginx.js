// nginx configurations: the origin (a separate instance, pinned with the load generator) and
// nginx as a proxy under test. One worker process each, so figures are per core.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { startProcess } from './procs.js';

export const SMALL_BODY = 'Hello, World!'; // 13 bytes

/** 100 KiB of word salad (compresses about 3:1 at gzip 5, like prose or JSON): the gzip scenario's body. */
export const TEXT_100K = (() => {
  const words = ['proxy', 'stream', 'route', 'upstream', 'client', 'header', 'body', 'request', 'the', 'of', 'and', 'a', 'to', 'is'];
  let x = 12345;
  let s = '';
  while (s.length < 100 * 1024) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += words[x % words.length] + ((x >> 8) % 11 === 0 ? '.\n' : ' ');
  }
  return Buffer.from(s.slice(0, 100 * 1024));
})();

/** nginx's gzip as usher's compress does it: the same level, text/plain, after 256 bytes, Vary. */
function gzipLines(level) {
  return `  gzip on;
  gzip_comp_level ${level};
  gzip_types text/plain;
  gzip_min_length 256;
  gzip_proxied any;
  gzip_vary on;
`;
}

/** Start nginx on `conf` in the foreground (daemon off), its master as the returned handle. */
export function startNginx(dir, conf, { cpu, name }) {
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  return startProcess('nginx', ['-p', dir + '/', '-c', file, '-e', 'stderr'], { cpu, name });
}

/** The top of an nginx.conf: one worker, in the foreground, errors to stderr. */
export function main(dir, modules = []) {
  // Workers would switch to "nobody", which cannot read our private temp directory.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const load = modules.map((m) => `load_module ${m};\n`).join('');
  return `${load}${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
`;
}

/** The start of an http block: no access log, every temp path under `dir`, long keep-alive. */
export function httpCommon(dir) {
  return `  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # nginx closes a keep-alive connection after 1000 requests by default; Node and HAProxy
  # never do. Lift the limit so no proxy pays reconnects the others don't.
  keepalive_requests 1000000;
  keepalive_timeout 65s;
`;
}

function tlsLines(tls) {
  return `    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
`;
}

/** Origin: GET /small (13 B), GET /100k (file), POST /post (reads and drops the body, "ok\n"). */
export function originConf(dir, { port, tlsPort, tls }) {
  const www = path.join(dir, 'www');
  fs.mkdirSync(www, { recursive: true });
  fs.writeFileSync(path.join(www, '100k'), Buffer.alloc(100 * 1024, 'a'));
  fs.writeFileSync(path.join(www, 'text100k'), TEXT_100K);
  return `${main(dir)}
http {
${httpCommon(dir)}  default_type application/octet-stream;
  sendfile on;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    listen 127.0.0.1:${tlsPort} ssl backlog=4096;
${tlsLines(tls)}    root ${www};
    location = /small { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /small-rl { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /small-rl-redis { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /small-jwt { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /small-cached { default_type text/plain; add_header Cache-Control "max-age=3600"; return 200 "${SMALL_BODY}"; }
    location = /waf/small { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /waf/post { client_max_body_size 1m; default_type text/plain; return 200 "ok\\n"; }
    # "return" discards (reads and drops) the request body before answering.
    location = /post { client_max_body_size 1m; default_type text/plain; return 200 "ok\\n"; }
    location = /100k { }
    location = /text100k { default_type text/plain; }
  }
}
`;
}

/**
 * nginx as a plain keep-alive reverse proxy to one upstream (HTTP or WebSocket). With `modsec`
 * ({ module, rulesFile }): ModSecurity on for the whole server, with that rules file.
 */
export function proxyConf(dir, { port, tls, upstreamPort, gzipLevel, modsec }) {
  const waf = modsec ? `    modsecurity on;\n    modsecurity_rules_file ${modsec.rulesFile};\n` : '';
  return `${main(dir, modsec ? [modsec.module] : [])}
http {
${httpCommon(dir)}  # Keep a 10 KiB POST body in memory, as the other proxies do, instead of a temp file.
  client_body_buffer_size 16k;
${gzipLevel ? gzipLines(gzipLevel) : ''}  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  # The cachehit scenario: nginx's own cache (keys in shared memory, bodies in files the page cache keeps).
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:8m max_size=64m;
  upstream origin {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''} backlog=4096;
${tls ? tlsLines(tls) : ''}${waf}    location = /small-cached {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
    }
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`;
}
