// Everything a run needs before the first measurement: system tools (installed with apt-get
// when missing), the peers' npm packages (bench/package.json), a scratch directory with a
// self-signed certificate, and the origins (nginx for HTTP, Node `ws` for WebSocket).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU } from './loadgen.js';
import { originConf, startNginx } from './nginx.js';
import { freePort, outputTail, startProcess, waitForPort } from './procs.js';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Debian package providing each executable we use. */
const PACKAGES = { nginx: 'nginx', haproxy: 'haproxy', caddy: 'caddy', wrk: 'wrk', taskset: 'util-linux', openssl: 'openssl' };

export function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Install the missing executables among `names` with apt-get (as root); report what is still missing. */
export function ensureCommands(names) {
  const missing = names.filter((n) => !hasCommand(n));
  if (!missing.length) return [];
  const packages = [...new Set(missing.map((n) => PACKAGES[n]))];
  if (process.getuid?.() !== 0 || !hasCommand('apt-get')) {
    console.error(`missing: ${missing.join(', ')} — install with: apt-get install ${packages.join(' ')}`);
    return missing;
  }
  console.error(`installing ${packages.join(' ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (!apt(['update', '-q']) || !apt(['install', '-y', '-q', '--no-install-recommends', ...packages])) {
    console.error('apt-get failed');
  }
  return missing.filter((n) => !hasCommand(n));
}

/** `npm install --prefix bench` when bench/node_modules is missing. */
export function ensureNodePeers() {
  if (fs.existsSync(path.join(BENCH_DIR, 'node_modules', 'ws'))) return;
  console.error('installing the Node peers: npm install --prefix bench ...');
  const result = spawnSync('npm', ['install', '--prefix', BENCH_DIR, '--no-audit', '--no-fund'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) throw new Error('npm install --prefix bench failed');
}

export function makeScratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'usher-bench-'));
}

/** Self-signed certificate for 127.0.0.1/localhost; `pem` is cert + key in one file (HAProxy). */
export function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const pem = path.join(dir, 'cert+key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  fs.writeFileSync(pem, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'));
  return { cert, key, pem };
}

/**
 * Start both origins on the load-generator core; returns their ports and handles. With `redis`
 * (a scenario needs it) and redis-server installed, also a redis-server there (no persistence):
 * `redisPort`, or `redisMissing` with the reason.
 */
export async function startOrigins(scratch, tls, { redis = false } = {}) {
  const dir = path.join(scratch, 'origin');
  fs.mkdirSync(dir);
  const [port, tlsPort, wsPort] = [await freePort(), await freePort(), await freePort()];
  const nginx = startNginx(dir, originConf(dir, { port, tlsPort, tls }), { cpu: LOAD_CPU, name: 'origin nginx' });
  const ws = startProcess(process.execPath, [path.join(BENCH_DIR, 'tools', 'ws-echo-origin.js'), '--port', String(wsPort)], {
    cpu: LOAD_CPU,
    name: 'origin ws',
  });
  const waits = [[nginx, port], [nginx, tlsPort], [ws, wsPort]];
  const handles = [nginx, ws];
  let redisPort;
  let redisMissing;
  if (redis && hasCommand('redis-server')) {
    redisPort = await freePort();
    const r = startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cpu: LOAD_CPU, name: 'origin redis' });
    waits.push([r, redisPort]);
    handles.push(r);
  } else if (redis) {
    redisMissing = 'redis-server is not installed (apt-get install redis-server)';
  }
  for (const [handle, p] of waits) {
    try {
      await waitForPort(p, { handle });
    } catch (err) {
      throw new Error(`${handle.name}: ${err.message}: ${outputTail(handle)}`);
    }
  }
  return { port, tlsPort, wsPort, redisPort, redisMissing, handles };
}

export function toolVersions(loadgen) {
  const first = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] || null;
  };
  const peer = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  return {
    node: process.version,
    nginx: hasCommand('nginx') ? first('nginx', ['-v']) : null,
    haproxy: hasCommand('haproxy') ? first('haproxy', ['-v']) : null,
    caddy: hasCommand('caddy') ? first('caddy', ['version']) : null,
    loadgen: loadgen === 'wrk' ? first('wrk', ['-v']) : `autocannon ${peer('autocannon')}`,
    'http-proxy': peer('http-proxy'),
    'http-proxy-3': peer('http-proxy-3'),
    '@fastify/http-proxy': peer('@fastify/http-proxy'),
    fastify: peer('fastify'),
    ws: peer('ws'),
  };
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? 'unknown',
    kernel: os.release(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}
