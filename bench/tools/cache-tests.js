// Runs the independent HTTP cache test suite (http-tests/cache-tests, whose results
// cache-tests.fyi publishes: never committed here, the operator points at a checkout with its
// dependencies installed) against usher's cache, and against nginx's proxy_cache in the same run
// (issue 12).
//
//   git clone https://github.com/http-tests/cache-tests ~/src/cache-tests && (cd ~/src/cache-tests && npm i)
//   npm run build && node bench/tools/cache-tests.js --suite ~/src/cache-tests [--peer nginx]
//   options: --json OUT (the suite's result object per target), --verbose (each failing test),
//            --stale-if-error DURATION (e.g. 24h: usher's operator override: serve stale while the upstream fails)
//
// The suite's own server is the origin; each target is a reverse proxy in front of it with a
// memory cache on every path. Scoring uses the suite's own rules (test-engine/lib/results.mjs):
// a required test passes when it and what it depends on pass; browser-only tests do not apply
// to a proxy. usher runs with one worker (each worker has its own memory store) and without
// outlier detection (the suite's origin answers 5xx on purpose; nginx's max_fails counts no 5xx).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { httpCommon, main, startNginx } from '../lib/nginx.js';
import { freePort, installCleanup, startProcess, stopProcess, waitForPort } from '../lib/procs.js';

const { values: args } = parseArgs({
  options: {
    suite: { type: 'string' },
    peer: { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'stale-if-error': { type: 'string' },
  },
});
if (args.suite === undefined) {
  console.error('usage: node bench/tools/cache-tests.js --suite DIR [--peer nginx] [--json OUT] [--verbose] [--stale-if-error 24h]');
  process.exit(2);
}
const suite = path.resolve(args.suite);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
for (const peer of args.peer) if (peer !== 'nginx') throw new Error(`unknown peer ${peer} (nginx is the one)`);

const { default: tests } = await import(pathToFileURL(path.join(suite, 'tests/index.mjs')).href);
const { determineTestResult, resultTypes } = await import(pathToFileURL(path.join(suite, 'test-engine/lib/results.mjs')).href);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usher-cache-tests-'));
const handles = [];
installCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The suite's origin server on a free port (it reads its port from npm's config variables). */
async function startOrigin() {
  const port = await freePort();
  const env = { ...process.env, npm_config_port: String(port), npm_config_protocol: 'http', npm_config_pidfile: path.join(dir, 'origin.pid') };
  const h = startProcess(process.execPath, [path.join(suite, 'test-engine/server/server.mjs')], { cwd: suite, env, name: 'cache-tests origin' });
  handles.push(h);
  await waitForPort(port, { handle: h });
  return port;
}

async function startUsherTarget(originPort) {
  const port = await freePort();
  const route = { upstream: 'origin', cache: args['stale-if-error'] === undefined ? 'main' : { store: 'main', stale_if_error: args['stale-if-error'] } };
  const config = {
    workers: 1,
    listeners: [{ address: `127.0.0.1:${port}` }],
    caches: { main: { type: 'memory', max_size: '256mb', max_object_size: '8mb' } },
    upstreams: { origin: { servers: [{ url: `http://127.0.0.1:${originPort}` }], outlier_detection: { enabled: false } } },
    routes: [route],
    log: { access_log: false },
  };
  const file = path.join(dir, 'usher.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const h = startProcess(process.execPath, [path.join(root, 'bin/usher.js'), 'serve', '-c', file], { name: 'usher' });
  handles.push(h);
  await waitForPort(port, { handle: h }).catch((err) => {
    throw new Error(`usher: ${err.message}\n${h.stdout}${h.stderr}`);
  });
  return port;
}

async function startNginxTarget(originPort) {
  const port = await freePort();
  const ndir = path.join(dir, 'nginx');
  fs.mkdirSync(path.join(ndir, 'cache'), { recursive: true });
  // What the suite's own nginx setup measures: proxy_cache with revalidation, nothing tuned.
  const conf = `${main(ndir)}
http {
${httpCommon(ndir)}  proxy_cache_path ${ndir}/cache levels=1:2 keys_zone=c:8m max_size=1000m inactive=600m;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${originPort};
      proxy_cache c;
      proxy_cache_revalidate on;
      proxy_http_version 1.1;
    }
  }
}
`;
  const h = startNginx(ndir, conf, { name: 'nginx' });
  handles.push(h);
  await waitForPort(port, { handle: h });
  return port;
}

/** The suite's client against `port`: its JSON result object. */
function runClient(port) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, npm_config_base: `http://127.0.0.1:${port}`, npm_config_id: '', npm_package_config_id: '' };
    const child = spawn(process.execPath, ['--no-warnings', path.join(suite, 'test-engine/cli.mjs')], { cwd: suite, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (err += s));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the suite's client exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(new Error(`the suite's client printed no JSON (${e.message}): ${out.slice(0, 500)}`));
      }
    });
  });
}

function score(results) {
  const counts = { required: 0, requiredPass: 0, optimal: 0, optimalPass: 0 };
  const failures = [];
  for (const s of tests) {
    for (const t of s.tests) {
      if (t.browser_only) continue;
      const kind = t.kind ?? 'required';
      if (kind === 'check') continue;
      const r = determineTestResult(tests, t.id, results);
      const passed = r === resultTypes.pass;
      counts[kind]++;
      if (passed) counts[`${kind}Pass`]++;
      else if (kind === 'required') failures.push(`${r[2]} ${t.id}: ${t.name} ${JSON.stringify(results[t.id] ?? null)}`);
    }
  }
  return { counts, failures };
}

const originPort = await startOrigin();
const targets = [['usher', startUsherTarget], ...args.peer.map((p) => [p, startNginxTarget])];
const all = {};
for (const [name, start] of targets) {
  const port = await start(originPort);
  const results = await runClient(port);
  all[name] = results;
  const { counts, failures } = score(results);
  console.log(`${name}: required ${counts.requiredPass}/${counts.required}, optimal ${counts.optimalPass}/${counts.optimal}`);
  if (args.verbose) for (const f of failures) console.log(`  ${f}`);
}
if (args.json !== undefined) fs.writeFileSync(args.json, JSON.stringify(all, null, 2));
for (const h of handles.reverse()) await stopProcess(h);
