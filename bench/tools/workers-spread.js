#!/usr/bin/env node
// How usher's workers share the connections, and what each way costs: `workers_mechanism:
// cluster` with NODE_CLUSTER_SCHED_POLICY rr (the primary accepts and hands each connection to
// the workers in turn) or none (every worker accepts on the primary's shared socket; the kernel
// wakes one), and `workers_mechanism: reuse_port` (each worker binds the port with SO_REUSEPORT;
// the kernel hashes each connection to one of the sockets; Node >= 22.12 / 23.1). usher
// --workers N against a local origin, wrk with keep-alive and with a new connection per request;
// prints each worker's share of connections and requests (GET /status) and CPU µs per request of
// the whole tree (primary + workers) and of the primary alone. Repetitions are interleaved, the
// order rotating each time.
//
//   node bench/tools/workers-spread.js [--workers 2] [--duration 3] [--connections 50]
//     [--policies rr,none,reuseport] [--modes keep-alive,close] [--reps 1]
// (reuseport by default only where usher can use it; run `npm run build` first)
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuDeltaUs, cpuSnapshot } from '../lib/cpu.js';
import { freePort, installCleanup, startProcess, stopProcess, waitForPort } from '../lib/procs.js';
import { REPO_DIR } from '../lib/proxies.js';
import { reusePortAvailable } from '../../dist/src/server/workers/mechanism.js';

const { values } = parseArgs({ options: { workers: { type: 'string', default: '2' }, duration: { type: 'string', default: '3' }, connections: { type: 'string', default: '50' }, policies: { type: 'string', default: reusePortAvailable() ? 'rr,none,reuseport' : 'rr,none' }, modes: { type: 'string', default: 'keep-alive,close' }, reps: { type: 'string', default: '1' } } });
const workers = Number(values.workers);

const origin = createServer((req, res) => res.end('Hello, World!'));
origin.keepAliveTimeout = 60_000;
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const originPort = origin.address().port;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usher-spread-'));
installCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));

async function status(admin) {
  const r = await globalThis.fetch(`http://127.0.0.1:${admin}/status`);
  return r.json();
}

async function run(policy, mode) {
  const [port, admin] = [await freePort(), await freePort()];
  const file = path.join(dir, 'usher.yaml');
  const mechanism = policy === 'reuseport' ? 'reuse_port' : 'cluster';
  fs.writeFileSync(file, `listeners: [{ address: 127.0.0.1:${port} }]\nadmin: { address: 127.0.0.1:${admin}, metrics: false }\nupstreams: { origin: { servers: [http://127.0.0.1:${originPort}] } }\nroutes: [{ upstream: origin }]\nlog: { level: warn }\nworkers_mechanism: ${mechanism}\n`);
  const env = policy === 'reuseport' ? process.env : { ...process.env, NODE_CLUSTER_SCHED_POLICY: policy };
  const handle = startProcess(process.execPath, [path.join(REPO_DIR, 'bin', 'usher.js'), 'serve', '--config', file, '--workers', String(workers)], { env, name: 'usher' });
  await waitForPort(port, { handle, timeoutMs: 60_000 });
  await waitForPort(admin, { handle, timeoutMs: 60_000 });
  const before = cpuSnapshot(handle.pid);
  const start = await status(admin);
  // Async: the origin runs in this process.
  const { stdout: out } = await promisify(execFile)('wrk', ['-t', '1', '-c', values.connections, '-d', `${values.duration}s`, ...(mode === 'close' ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/`]);
  const after = cpuSnapshot(handle.pid);
  const end = await status(admin);
  await stopProcess(handle);
  if (end.workers_mechanism !== mechanism) throw new Error(`asked for ${mechanism}, usher runs ${end.workers_mechanism} (Node ${process.versions.node})`);
  const requests = end.requests - start.requests;
  const share = (k) => end.workers.map((w, i) => (w[k] ?? 0) - (start.workers[i][k] ?? 0));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const conns = share('connections');
  const reqs = share('requests');
  const pct = (xs) => xs.map((x) => `${Math.round((100 * x) / Math.max(1, xs.reduce((a, b) => a + b, 0)))}%`).join('/');
  console.log(`${policy.padEnd(9)} ${mode.padEnd(10)} ${String(Math.round(rps)).padStart(6)} req/s  ${(cpuDeltaUs(before, after) / requests).toFixed(1).padStart(6)} CPU µs/req (primary ${(((after.get(handle.pid) ?? 0) - (before.get(handle.pid) ?? 0)) / requests).toFixed(1)})  connections ${pct(conns)} (${conns.join('/')})  requests ${pct(reqs)}`);
}

console.log(`usher --workers ${workers}, wrk -c ${values.connections} -d ${values.duration}s; ${os.cpus().length} cores shared with the load generator`);
const policies = values.policies.split(',');
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const mode of values.modes.split(',')) {
    // The order rotates each repetition, so no policy always runs first.
    for (let i = 0; i < policies.length; i++) await run(policies[(i + rep) % policies.length], mode);
  }
}
origin.close();
