// Config load and reload at scale (issue #11). Not ns/op cases: each figure is one load or one
// reload, so this file exports report() (bench/micro.js runs it after the cases).
//   - load time per route count: loadConfigText (parse, schema, checks, normalize) on this thread;
//   - a reload to 20k routes while serving: the largest delay of requests sent one after another
//     on a keep-alive connection during the reload, next to the same figure before it (noise of
//     the machine), for the reload path usher uses (worker thread + routes compiled in slices) and
//     with the file loaded on the serving thread as before.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfigFile, loadConfigText } from '../../dist/src/config/index.js';
import { loadConfigFileOffThread } from '../../dist/src/config/load-off-thread.js';
import { Usher } from '../../dist/src/server/usher.js';

export const cases = [];

/** n routes: half path + method + header routes proxied, half host + path routes answered locally. */
export function routesConfig(n) {
  const lines = ['listeners: [{ address: "127.0.0.1:0" }]\nupstreams:\n  app: { servers: [http://127.0.0.1:9] }\nroutes:\n'];
  for (let i = 0; i < n / 2; i++) {
    lines.push(`  - { match: { path: /svc${i}/api, method: GET, headers: { x-t: { exact: "v${i}" } } }, upstream: app }\n`);
    lines.push(`  - { match: { host: h${i}.example.test, path: /p${i} }, respond: { status: 200, body: "r${i}" } }\n`);
  }
  lines.push('  - { respond: { status: 200, body: "ok" } }\n');
  return lines.join('');
}

function get(agent, port) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Largest request latency (ms) while `work` runs, with requests sent back to back. */
async function maxDelayDuring(agent, port, work) {
  let done = false;
  let max = 0;
  let count = 0;
  const loop = (async () => {
    while (!done) {
      const t0 = performance.now();
      await get(agent, port);
      max = Math.max(max, performance.now() - t0);
      count++;
    }
  })();
  const t0 = performance.now();
  await work();
  const took = performance.now() - t0;
  done = true;
  await loop;
  return { max, count, took };
}

export async function report() {
  const lines = [];
  const results = [];
  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-'));
  try {
    const small = join(dir, 'small.yaml');
    const big = join(dir, 'big.yaml');
    writeFileSync(small, routesConfig(2));
    writeFileSync(big, routesConfig(20_000));
    const quiet = { accessLogDestination: new PassThrough().resume(), logDestination: new PassThrough().resume() };
    for (const [how, load, reload] of [
      ['worker + slices', loadConfigFileOffThread, (u, c) => u.reload(c)],
      ['loaded on the serving thread as before', loadConfigFile, (u, c) => u.reload(c)],
    ]) {
      const first = await loadConfigFile(small);
      const usher = new Usher(first.config, quiet);
      await usher.start();
      const port = usher.addresses()[0].port;
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      await get(agent, port);
      const base = await maxDelayDuring(agent, port, () => new Promise((r) => setTimeout(r, 1000)));
      const during = await maxDelayDuring(agent, port, async () => {
        const next = await load(big);
        if (!next.ok) throw new Error('invalid');
        await reload(usher, next.config);
      });
      agent.destroy();
      await usher.close(0);
      results.push({ name: `reload to 20000 routes, ${how}`, maxDelayMs: during.max, requests: during.count, reloadMs: during.took, idleMaxDelayMs: base.max });
      lines.push(
        `reload to 20000 routes, ${how}: max request delay ${during.max.toFixed(1)} ms over ${during.count} requests in ${during.took.toFixed(0)} ms` +
          ` (before it, 1 s of the same requests: max ${base.max.toFixed(1)} ms — the machine's own noise)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // After the reload figures: the garbage of five config loads (up to 40k routes) would otherwise
  // be collected during the reload and counted as its delay, which a running usher never has.
  for (const n of [1_000, 5_000, 10_000, 20_000, 40_000]) {
    const text = routesConfig(n);
    const t0 = performance.now();
    const r = loadConfigText(text, 'bench.yaml', {});
    const ms = performance.now() - t0;
    if (!r.ok) throw new Error(JSON.stringify(r.errors.slice(0, 3)));
    results.push({ name: `config load: ${n} routes`, ms });
    lines.push(`config load: ${String(n).padStart(6)} routes  ${ms.toFixed(0).padStart(6)} ms  (${((ms * 1000) / n).toFixed(1)} µs/route)`);
  }

  return { lines, results };
}
