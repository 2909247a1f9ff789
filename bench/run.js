// usher's macro benchmark: usher beside nginx, HAProxy and the Node proxies people use, in the
// same run on the same machine. See bench/README.md for the method.
//   npm run bench -- [--quick] [--proxies a,b] [--scenarios x,y] [--reps N] [--duration 4s] ...
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, USAGE } from './lib/args.js';
import { compareMarkdown, compareResults } from './lib/compare.js';
import { machineBusy } from './lib/cpu.js';
import { installCleanup, stopProcess } from './lib/procs.js';
import { PROXIES, selectProxies } from './lib/proxies.js';
import { markdown, summarise } from './lib/report.js';
import { runOne } from './lib/run-one.js';
import { SCENARIOS, selectScenarios } from './lib/scenarios.js';
import { formatDuration } from './lib/stats.js';
import * as setup from './lib/setup.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(BENCH_DIR, 'results');

/** Seconds a run spends outside the load itself: start, readiness, check, stop. */
const OVERHEAD_S = { floor: 0.2, pipe: 0.4, native: 0.3, node: 0.6, usher: 0.6 };

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  if (options.list) {
    for (const p of PROXIES) console.log(`proxy     ${p.id.padEnd(14)} ${p.label}`);
    for (const s of SCENARIOS) console.log(`scenario  ${s.id.padEnd(14)} ${s.title}`);
    return 0;
  }
  if (options.against) return compareFiles(options.compare, options.against, options.thresholdPct);

  const proxies = selectProxies(options.proxies);
  const scenarios = selectScenarios(options.scenarios);
  const loadgen = prepareTools(proxies, options);
  setup.ensureNodePeers();
  if (os.cpus().length < 2) console.error('warning: fewer than 2 cores; the proxy cannot have a core of its own');
  // How busy the machine is before we load it: anything else running skews the figures.
  const machine = { ...setup.machineInfo(), busyBeforeRun: await machineBusy() };
  if (machine.busyBeforeRun > 0.1) {
    console.error(`warning: the cores were ${Math.round(machine.busyBeforeRun * 100)}% busy before the run; other work skews the figures`);
  }

  const scratch = setup.makeScratch();
  const cleanup = installCleanup(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const runs = options.reps * scenarios.length * proxies.length;
  const overheadS = proxies.reduce((sum, p) => sum + OVERHEAD_S[p.kind], 0) * scenarios.length * options.reps;
  // --rate auto: one saturation run of usher per scenario before the measured runs.
  const probeS = options.rate === 'auto' ? scenarios.length * (options.warmupS + options.durationS + OVERHEAD_S.usher) : 0;
  const estimate = runs * (options.warmupS + options.durationS) + overheadS + probeS + 3;
  console.error(
    `${runs} runs (${options.reps} reps × ${scenarios.length} scenarios × ${proxies.length} proxies) of ` +
      `${options.warmupS}s warm-up + ${options.durationS}s with ${loadDescription(options, loadgen)}: about ${formatDuration(estimate)}`,
  );

  const startedAt = Date.now();
  const tls = setup.makeCertificate(scratch);
  const origins = await setup.startOrigins(scratch, tls, { redis: scenarios.some((s) => s.redis) && proxies.some((p) => p.kind === 'usher') });
  const env = { scratch, tls, origins, loadgen, options, startFailures: new Map() };
  if (options.rate) Object.assign(env, await openLoopRates(scenarios, env));
  const raw = {};
  let done = 0;
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const scenario of scenarios) {
      // Rotate the order each repetition so no proxy always runs first or after the same peer.
      const order = proxies.map((_, i) => proxies[(i + rep - 1) % proxies.length]);
      for (const proxy of order) {
        const result = await runOne(proxy, scenario, rep, env);
        ((raw[scenario.id] ??= {})[proxy.id] ??= []).push(result);
        console.error(`[${++done}/${runs}] rep ${rep} ${scenario.id.padEnd(8)} ${proxy.id.padEnd(13)} ${progress(result)}`);
      }
    }
  }
  for (const handle of origins.handles) await stopProcess(handle);

  const meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    elapsed: formatDuration((Date.now() - startedAt) / 1000),
    machine,
    tools: setup.toolVersions(loadgen),
    options: { ...options, proxies: proxies.map((p) => p.id), scenarios: scenarios.map((s) => s.id), loadgen },
  };
  const results = summarise(raw, proxies, scenarios, env.rates);
  let report = markdown(results, meta, proxies);
  const json = { version: 1, ...meta, results };
  let exitCode = 0;
  if (options.compare) {
    const before = JSON.parse(fs.readFileSync(options.compare, 'utf8'));
    const rows = compareResults(before, json, options.thresholdPct);
    report += `\n${compareMarkdown(rows, { beforeFile: options.compare, thresholdPct: options.thresholdPct })}\n`;
    if (rows.some((r) => r.verdict === 'REGRESSION')) exitCode = 1;
  }
  writeResults(report, json);
  console.log(report);
  console.error(`took ${meta.elapsed}; results in ${path.relative(process.cwd(), RESULTS_DIR) || '.'}/latest.{md,json}`);
  cleanup();
  return exitCode;
}

/**
 * The fixed rate of each scenario in open-loop mode: --rate N for all, or with --rate auto half
 * of the req/s usher reaches at saturation (a closed-loop run with the usual load generator,
 * same warm-up and duration), so usher — the proxy the comparison is about — runs at 50% load
 * and every faster peer below that.
 */
async function openLoopRates(scenarios, env) {
  const rates = {};
  const rateFailures = {};
  const usher = PROXIES.find((p) => p.id === 'usher');
  for (const scenario of scenarios) {
    if (env.options.rate !== 'auto') {
      rates[scenario.id] = env.options.rate;
      continue;
    }
    const probe = await runOne(usher, scenario, 'probe', env);
    if (probe.status === 'ok' && probe.rps >= 2) {
      rates[scenario.id] = Math.floor(probe.rps / 2);
      console.error(`rate for ${scenario.id}: ${rates[scenario.id]} req/s (usher saturated at ${Math.round(probe.rps)} req/s)`);
    } else {
      rateFailures[scenario.id] = `--rate auto: usher's saturation run failed: ${probe.reason ?? 'no request completed'}`;
      console.error(`rate for ${scenario.id}: ${rateFailures[scenario.id]}`);
    }
  }
  return { rates, rateFailures };
}

/** Install what is missing; returns the load generator to use. */
function prepareTools(proxies, options) {
  const needed = ['nginx', 'taskset', 'openssl'];
  for (const p of proxies) if (p.requires && p.requires !== 'nginx') needed.push(p.requires);
  if (options.loadgen !== 'autocannon') needed.push('wrk');
  const missing = setup.ensureCommands(needed);
  const fatal = missing.filter((n) => ['nginx', 'taskset', 'openssl'].includes(n));
  if (fatal.length) throw new Error(`cannot run without ${fatal.join(', ')}`);
  if (options.loadgen === 'wrk' && missing.includes('wrk')) throw new Error('wrk is not installed');
  const loadgen = options.loadgen ?? (setup.hasCommand('wrk') ? 'wrk' : 'autocannon');
  if (loadgen === 'autocannon' && !options.loadgen) console.error('wrk not found: using autocannon');
  return loadgen;
}

function loadDescription(options, loadgen) {
  if (!options.rate) return loadgen;
  return `open-loop load at ${options.rate === 'auto' ? "half of usher's saturation req/s" : `${options.rate} req/s`}`;
}

function progress(result) {
  if (result.status !== 'ok') return `${result.status}: ${result.reason}`;
  const cpu = result.cpuUsPerReq == null ? '' : `  ${result.cpuUsPerReq.toFixed(1)} µs/req  ${result.peakRssMiB.toFixed(0)} MiB`;
  const errors = result.errors ? `  ${result.errors} errors` : '';
  const tail = result.targetRate ? ` p99.9 ${result.p999Ms?.toFixed(2)} ms${result.sustained ? '' : '  NOT SUSTAINED'}` : '';
  return `${Math.round(result.rps)} req/s  p99 ${result.p99Ms?.toFixed(2)} ms${tail}${cpu}${errors}`;
}

function writeResults(report, json) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const text = `${JSON.stringify(json, null, 2)}\n`;
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.md'), `${report}\n`);
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), text);
  fs.writeFileSync(path.join(RESULTS_DIR, `${json.date.replace(/:/g, '-')}.json`), text);
}

function compareFiles(beforeFile, afterFile, thresholdPct) {
  const read = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
  const rows = compareResults(read(beforeFile), read(afterFile), thresholdPct);
  console.log(compareMarkdown(rows, { beforeFile, afterFile, thresholdPct }));
  return rows.some((r) => r.verdict === 'REGRESSION') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code ?? 0;
  },
  (err) => {
    console.error(`bench: ${err.message} (npm run bench -- --help)`);
    process.exitCode = 1;
  },
);
