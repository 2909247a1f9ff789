// Instructions per request of the WAF engine alone (src/waf: phases 1 and 2 of the CRS on the
// bench's waf-small and waf-post10k requests, no sockets, no proxy), counted by valgrind's
// callgrind: each case runs twice in a child, with N and 3N requests after the same warm-up; the
// difference divided by 2N leaves out loading the CRS, start-up and JIT. A figure the machine's
// load does not move. Run `npm run build` first; needs valgrind.
//
//   node bench/waf/eval-instructions.js [--requests 300] [--scenario waf-post10k,waf-small]
//     [--pl 1,4] [--root /path/to/built/checkout] [--time] [--cpu-prof DIR]
//
// `--time`: no valgrind; microseconds per request over 5 rounds of N (wall clock: noisy here).
// `--cpu-prof DIR`: no valgrind; one child per case under node --cpu-prof, profiles into DIR.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FORM_10K, WAF_HEADERS } from '../lib/scenarios.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '300' },
    scenario: { type: 'string', default: 'waf-post10k,waf-small' },
    pl: { type: 'string', default: '1,4' },
    root: { type: 'string', default: REPO },
    crs: { type: 'string', default: '/usr/share/modsecurity-crs' },
    time: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    child: { type: 'boolean', default: false },
  },
});

const CASES = {
  'waf-small': { method: 'GET', target: '/waf/small?id=42&lang=en&page=2', body: undefined },
  'waf-post10k': { method: 'POST', target: '/waf/post', body: FORM_10K },
};

async function child() {
  const { Waf } = await import(pathToFileURL(path.join(values.root, 'dist/src/waf/engine.js')).href);
  const pl = Number(values.pl);
  const waf = new Waf({ crs: values.crs, paranoiaLevel: pl, inboundThreshold: 5, outboundThreshold: 4, mode: 'block', requestBodyLimit: 13107200 });
  const c = CASES[values.scenario];
  if (c === undefined) throw new Error(`unknown scenario ${values.scenario}`);
  const headers = WAF_HEADERS.flat();
  const body = c.body === undefined ? undefined : Buffer.from(c.body, 'latin1');
  if (body !== undefined) headers.push('Content-Type', 'application/x-www-form-urlencoded', 'Content-Length', String(body.length));
  let seq = 0;
  const one = () => {
    const tx = waf.transaction({ id: `r${seq++}`, method: c.method, target: c.target, httpVersion: '1.1', headers, remoteAddr: '127.0.0.1', remotePort: 40000 });
    tx.runPhase(1);
    if (body !== undefined) waf.addBody(tx, body, 'application/x-www-form-urlencoded');
    else waf.noBody(tx, undefined);
    tx.runPhase(2);
    if (tx.matched.length !== 0 || tx.interruption !== undefined) throw new Error(`${values.scenario} PL${pl}: rules matched: ${tx.matched.map((m) => m.id).join(' ')}`);
  };
  for (let i = 0; i < Number(values.warmup); i++) one();
  const n = Number(values.requests);
  if (values.time) {
    const per = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) one();
      per.push(((performance.now() - t0) * 1000) / n);
    }
    per.sort((a, b) => a - b);
    console.log(`${values.scenario} PL${pl}: ${per[2].toFixed(1)} us/request median (fastest ${per[0].toFixed(1)}) of 5 x ${n}`);
    return;
  }
  for (let i = 0; i < n; i++) one();
}

if (values.child) await child();
else {
  const self = fileURLToPath(import.meta.url);
  const n = Number(values.requests);
  for (const scenario of values.scenario.split(',')) {
    for (const pl of values.pl.split(',')) {
      const args = [self, '--child', '--scenario', scenario, '--pl', pl, '--root', values.root, '--crs', values.crs, '--warmup', values.warmup];
      if (values.time) {
        const r = spawnSync(process.execPath, [...args, '--requests', String(n), '--time'], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr);
        process.stdout.write(r.stdout);
        continue;
      }
      if (values['cpu-prof'] !== undefined) {
        const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', `${scenario}-pl${pl}.cpuprofile`, ...args, '--requests', String(n)], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr);
        console.log(`${values['cpu-prof']}/${scenario}-pl${pl}.cpuprofile`);
        continue;
      }
      const count = (requests) => {
        const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, ...args, '--requests', String(requests)], { encoding: 'utf8' });
        const m = /Collected : (\d+)/.exec(r.stderr ?? '');
        if (r.status !== 0 || m === null) throw new Error(`valgrind failed (${r.error?.message ?? r.status}): ${(r.stderr ?? '').slice(-800)}`);
        return Number(m[1]);
      };
      const per = (count(3 * n) - count(n)) / (2 * n);
      console.log(`${scenario} PL${pl}: ${Math.round(per / 1000)}k instructions per request (2 x ${n} requests)`);
    }
  }
}
