// One measured run: start the proxy fresh (alone on its core), wait until it listens, check
// that it serves the scenario, warm it up, then measure load, CPU time and peak RSS; stop it.
import fs from 'node:fs';
import path from 'node:path';
import { checkScenario } from './check.js';
import { cpuDeltaUs, cpuSnapshot, peakRssKiB } from './cpu.js';
import { runLoad, runOpenLoop } from './loadgen.js';
import { delay, exitDescription, freePort, outputTail, stopProcess, waitForPort } from './procs.js';
import { hasCommand } from './setup.js';

/**
 * With `env.rates` (open-loop mode) the load is tools/open-loop.js at env.rates[scenario.id]
 * requests/s, warm-up included; without it, closed-loop saturation (wrk, autocannon, ws-client).
 *
 * @param {object} env  { scratch, tls, origins, loadgen, options, startFailures, rates? }
 * @returns {Promise<object>} { status: 'ok', rps, p50Ms, p99Ms, cpuUsPerReq, peakRssMiB, requests, errors, errorDetail }
 *   or { status: 'failed' | 'n/a', reason }
 */
export async function runOne(proxy, scenario, rep, env) {
  if (proxy.requiresEnv && !process.env[proxy.requiresEnv]) return { status: 'n/a', reason: `${proxy.requiresEnv} is not set` };
  if (proxy.requires && !hasCommand(proxy.requires)) return { status: 'n/a', reason: `${proxy.requires} is not installed` };
  const unavailable = proxy.unavailable?.();
  if (unavailable) return { status: 'n/a', reason: unavailable };
  if (scenario.proxies && !scenario.proxies.includes(proxy.id)) return { status: 'n/a', reason: `only for ${scenario.proxies.join(', ')}` };
  if (proxy.scenarios && !proxy.scenarios.includes(scenario.id)) return { status: 'n/a', reason: `runs only ${proxy.scenarios.join(', ')}` };
  if (scenario.redis && !env.origins.redisPort) return { status: 'n/a', reason: env.origins.redisMissing ?? 'no redis-server' };
  if (env.rates && !env.rates[scenario.id]) return { status: 'n/a', reason: env.rateFailures?.[scenario.id] ?? 'no rate for this scenario' };
  const upstreamPort = scenario.upstream === 'ws' ? env.origins.wsPort : env.origins.port;
  if (proxy.kind === 'floor') {
    const port = scenario.tls ? env.origins.tlsPort : upstreamPort;
    return measure(scenario, baseUrl(scenario, port), null, env);
  }

  // A proxy that could not start will not start for the next scenario either: don't retry.
  const startKey = `${proxy.id}:${scenario.tls ? 'tls' : 'plain'}`;
  if (env.startFailures.has(startKey)) return env.startFailures.get(startKey);

  const dir = path.join(env.scratch, `${proxy.id}-${scenario.id}-${rep}`);
  fs.mkdirSync(dir);
  const port = await freePort();
  const handle = proxy.start({ dir, port, tls: scenario.tls ? env.tls : null, upstreamPort, gzipLevel: scenario.gzipLevel ?? null, metrics: scenario.metrics === true, workers: env.options.workers, redisPort: scenario.redis ? env.origins.redisPort : undefined });
  try {
    try {
      await waitForPort(port, { handle });
      // With workers the port opens when the first worker listens; the banner comes once every
      // worker serves: a worker still starting would count its start-up CPU in the measured run.
      if (proxy.kind === 'usher' && env.options.workers > 1) await waitForOutput(handle, /listening on/);
    } catch (err) {
      const tail = outputTail(handle);
      const failure = { status: 'failed', reason: `failed to start: ${err.message}${tail ? `: ${tail}` : ''}` };
      env.startFailures.set(startKey, failure);
      return failure;
    }
    return await measure(scenario, baseUrl(scenario, port), handle, env);
  } finally {
    await stopProcess(handle);
  }
}

async function waitForOutput(handle, re, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(handle.stderr)) {
    if (handle.exited) throw new Error(`exited (${exitDescription(handle)}) before it was ready`);
    if (Date.now() > deadline) throw new Error(`no ${re} in its output after ${timeoutMs} ms`);
    await delay(50); // polling interval, not a synchronisation sleep
  }
}

function baseUrl(scenario, port) {
  return `${scenario.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
}

async function measure(scenario, url, handle, { loadgen, options, scratch, rates }) {
  try {
    // A Redis-store route answers 503 until usher has connected (its policy fails closed).
    if (scenario.redis) await retried(() => checkScenario(scenario, url), 15_000);
    else await checkScenario(scenario, url);
  } catch (err) {
    return { status: 'n/a', reason: handle?.exited ? crashed(handle) : err.message };
  }
  const rate = rates?.[scenario.id];
  const load = { loadgen, scenario, url, connections: options.connections, tmp: scratch, rate };
  const run = rates ? runOpenLoop : runLoad;
  try {
    await run({ ...load, durationS: options.warmupS });
    const before = handle && cpuSnapshot(handle.pid);
    const result = await run({ ...load, durationS: options.durationS });
    const after = handle && cpuSnapshot(handle.pid);
    if (handle?.exited) return { status: 'failed', reason: crashed(handle) };
    if (!result.requests) return { status: 'n/a', reason: `no request completed (${result.errorDetail})` };
    return {
      status: 'ok',
      ...result,
      cpuUsPerReq: handle ? cpuDeltaUs(before, after) / result.requests : null,
      peakRssMiB: handle ? peakRssKiB(handle.pid) / 1024 : null,
    };
  } catch (err) {
    return { status: 'failed', reason: handle?.exited ? crashed(handle) : err.message };
  }
}

async function retried(fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(100); // polling interval
    }
  }
}

function crashed(handle) {
  return `exited during the run (${exitDescription(handle)}): ${outputTail(handle)}`;
}
