// One bounded load run against a URL, with wrk (or autocannon where wrk is absent) for HTTP and
// tools/ws-client.js for WebSocket, or at a fixed rate with tools/open-loop.js (--rate); the
// load generator is pinned to LOAD_CPU. All report
// { requests, durationS, rps, p50Ms, p99Ms, errors, errorDetail }.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitDescription, outputTail, runProcess } from './procs.js';
import { parseWrk, wrkArgs } from './wrk.js';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const LOAD_CPU = 0;

/**
 * @param {object} o
 * @param {'wrk'|'autocannon'} o.loadgen
 * @param {object} o.scenario  from scenarios.js
 * @param {string} o.url       base URL of the proxy (or origin, for "direct")
 * @param {number} o.connections
 * @param {number} o.durationS
 * @param {string} o.tmp       scratch directory
 */
export async function runLoad({ loadgen, scenario, url, connections, durationS, tmp }) {
  const timeoutMs = (durationS + 15) * 1000;
  if (scenario.kind === 'ws') {
    const wsUrl = url.replace(/^http/, 'ws') + '/';
    const args = [tool('ws-client.js'), '--url', wsUrl, '--connections', String(connections), '--duration', String(durationS)];
    return jsonResult(await runProcess(process.execPath, args, { cpu: LOAD_CPU, timeoutMs, name: 'ws-client' }));
  }
  const target = url + scenario.path;
  if (loadgen === 'wrk') {
    const handle = await runProcess('wrk', wrkArgs({ url: target, connections, durationS, scenario, tmp }), {
      cpu: LOAD_CPU,
      timeoutMs,
      name: 'wrk',
    });
    if (handle.code !== 0) throw new Error(`wrk ${exitDescription(handle)}: ${outputTail(handle)}`);
    return parseWrk(handle.stdout);
  }
  const args = [tool('autocannon-run.js'), '--url', target, '--connections', String(connections), '--duration', String(durationS)];
  args.push(...requestArgs(scenario, tmp));
  return jsonResult(await runProcess(process.execPath, args, { cpu: LOAD_CPU, timeoutMs, name: 'autocannon' }));
}

/**
 * Open-loop load at `rate` requests (or WebSocket round trips) per second with
 * tools/open-loop.js; the same result fields plus targetRate, p999Ms, maxMs, scheduleLagP99Ms,
 * maxQueue and sustained.
 */
export async function runOpenLoop({ scenario, url, connections, durationS, rate, tmp }) {
  const timeoutMs = (durationS + 20) * 1000;
  const target = scenario.kind === 'ws' ? url.replace(/^http/, 'ws') + '/' : url + scenario.path;
  const args = [tool('open-loop.js'), '--url', target, '--rate', String(rate), '--duration', String(durationS), '--connections', String(connections)];
  if (scenario.kind === 'ws') args.push('--ws');
  else args.push(...requestArgs(scenario, tmp));
  return jsonResult(await runProcess(process.execPath, args, { cpu: LOAD_CPU, timeoutMs, name: 'open-loop' }));
}

/** The request options tools/autocannon-run.js and tools/open-loop.js share; a scenario's own body goes through a file in `tmp`. */
function requestArgs(scenario, tmp) {
  const args = [];
  if (scenario.method === 'POST' && scenario.body !== undefined) {
    const file = path.join(tmp, `body-${scenario.id}`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, scenario.body);
    args.push('--method', 'POST', '--body-file', file, '--content-type', scenario.contentType);
  } else if (scenario.method === 'POST') {
    args.push('--method', 'POST', '--body-bytes', String(scenario.bodyBytes));
  }
  if (scenario.close) args.push('--close');
  if (scenario.acceptEncoding) args.push('--accept-encoding', scenario.acceptEncoding);
  if (scenario.authorization) args.push('--authorization', scenario.authorization);
  for (const [name, value] of scenario.headers ?? []) args.push('--header', `${name}: ${value}`);
  return args;
}

/** One WebSocket round trip through `url`; throws with the reason when it cannot be done. */
export async function checkWebSocket(url) {
  const wsUrl = url.replace(/^http/, 'ws') + '/';
  const handle = await runProcess(process.execPath, [tool('ws-client.js'), '--url', wsUrl, '--check'], {
    cpu: LOAD_CPU,
    timeoutMs: 15000,
    name: 'ws-check',
  });
  if (handle.code !== 0) throw new Error(`websocket echo failed: ${outputTail(handle, 1) || exitDescription(handle)}`);
}

function tool(name) {
  return path.join(BENCH_DIR, 'tools', name);
}

function jsonResult(handle) {
  const line = handle.stdout.trim().split('\n').pop();
  if (handle.code !== 0 || !line?.startsWith('{')) {
    throw new Error(`${handle.name} ${exitDescription(handle)}: ${outputTail(handle)}`);
  }
  return JSON.parse(line);
}
