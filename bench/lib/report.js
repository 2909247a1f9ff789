// Medians across repetitions, ratios against nginx and the best Node peer, and the Markdown
// report printed at the end of a run and written to bench/results/latest.md.
import { clockTicksPerSecond } from './cpu.js';
import { median } from './stats.js';

const METRICS = ['rps', 'p50Ms', 'p99Ms', 'cpuUsPerReq', 'peakRssMiB', 'p999Ms', 'maxMs', 'scheduleLagP99Ms'];

/**
 * @param {Record<string, Record<string, object[]>>} raw  scenario id → proxy id → per-rep results
 * @param {Record<string, number> | undefined} rates  open-loop mode: the fixed rate of each scenario
 * @returns per scenario: { bestNode, rate, proxies: { id → summary } }
 */
export function summarise(raw, proxies, scenarios, rates) {
  const results = {};
  for (const scenario of scenarios) {
    const rows = {};
    for (const proxy of proxies) rows[proxy.id] = summariseReps(raw[scenario.id]?.[proxy.id] ?? []);
    // A peer that fails more than 1% of its requests is not a fair yardstick.
    const bestNode = proxies
      .filter((p) => p.kind === 'node' && rows[p.id].status === 'ok' && rows[p.id].cpuUsPerReq != null && rows[p.id].errorRate <= 0.01)
      .sort((a, b) => rows[a.id].cpuUsPerReq - rows[b.id].cpuUsPerReq)[0]?.id ?? null;
    for (const proxy of proxies) {
      const row = rows[proxy.id];
      if (row.status !== 'ok' || proxy.kind === 'floor') continue;
      row.vsNginx = ratios(row, rows.nginx);
      row.vsBestNode = ratios(row, bestNode && rows[bestNode]);
    }
    results[scenario.id] = { title: scenario.title, bestNode, rate: rates?.[scenario.id] ?? null, proxies: rows };
  }
  return results;
}

function summariseReps(reps) {
  const ok = reps.filter((r) => r.status === 'ok');
  if (!ok.length) {
    const first = reps.find((r) => r.status === 'failed') ?? reps[0];
    return { status: first?.status ?? 'n/a', reason: first?.reason ?? 'not run', reps };
  }
  const row = { status: 'ok' };
  for (const metric of METRICS) row[metric] = median(ok.map((r) => r[metric]));
  row.errors = median(ok.map((r) => r.errors)); // per measured run, like the other figures
  row.errorRate = median(ok.map((r) => r.errors / Math.max(1, r.requests))); // errors per successful response
  if (ok.some((r) => 'sustained' in r)) row.sustained = ok.every((r) => r.sustained); // open loop
  if (ok.length < reps.length) row.note = `${reps.length - ok.length} of ${reps.length} reps failed: ${reps.find((r) => r.status !== 'ok').reason}`;
  row.reps = reps;
  return row;
}

/** CPU/req and req/s as multiples of a reference row (CPU > 1 is costlier, req/s < 1 slower). */
function ratios(row, ref) {
  if (!ref || ref.status !== 'ok') return null;
  return {
    cpu: row.cpuUsPerReq != null && ref.cpuUsPerReq ? row.cpuUsPerReq / ref.cpuUsPerReq : null,
    rps: ref.rps ? row.rps / ref.rps : null,
    p99: row.p99Ms != null && ref.p99Ms ? row.p99Ms / ref.p99Ms : null,
  };
}

const dash = '—';
const int = (n) => (n == null ? dash : Math.round(n).toLocaleString('en-US'));
const fixed = (n, digits) => (n == null ? dash : n.toFixed(digits));
const ms = (n) => (n == null ? dash : n < 10 ? n.toFixed(2) : n.toFixed(1));
const times = (n) => (n == null ? dash : `${n.toFixed(2)}×`);
const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\s+/g, ' ');

const HEADER = [
  '| proxy | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | errors/run | CPU ÷ nginx | CPU ÷ best Node | req/s ÷ nginx | req/s ÷ best Node |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
];

const OPEN_LOOP_HEADER = [
  '| proxy | req/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU µs/req | peak RSS MiB | errors/run | client lag p99 ms | p99 ÷ nginx | CPU ÷ nginx |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
];

export function markdown(results, meta, proxies) {
  if (meta.options.rate) return openLoopMarkdown(results, meta, proxies);
  const lines = [`# usher benchmark — ${meta.date}`, '', describe(meta), ''];
  for (const [id, scenario] of Object.entries(results)) {
    const best = proxies.find((p) => p.id === scenario.bestNode);
    lines.push(`## ${scenario.title} (\`${id}\`)`, '', `Best Node peer (lowest CPU/req): ${best ? best.label : dash}`, '', ...HEADER);
    const notes = [];
    for (const proxy of proxies) {
      const row = scenario.proxies[proxy.id];
      if (row.status !== 'ok') {
        // Keep both ends: what failed, and the last words of its stderr.
        const reason = row.reason.length > 240 ? `${row.reason.slice(0, 80)} … ${row.reason.slice(-150)}` : row.reason;
        lines.push(`| ${proxy.label} | ${cell(`${row.status === 'failed' ? '' : 'n/a: '}${reason}`)} |${' |'.repeat(9)}`);
        continue;
      }
      lines.push(
        `| ${proxy.label} | ${int(row.rps)} | ${ms(row.p50Ms)} | ${ms(row.p99Ms)} | ${fixed(row.cpuUsPerReq, 1)} | ` +
          `${fixed(row.peakRssMiB, 1)} | ${int(row.errors)} | ${times(row.vsNginx?.cpu)} | ${times(row.vsBestNode?.cpu)} | ` +
          `${times(row.vsNginx?.rps)} | ${times(row.vsBestNode?.rps)} |`,
      );
      if (row.note) notes.push(`${proxy.label}: ${row.note}`);
      if (row.errors) {
        const detail = row.reps.map((r) => r.errorDetail).filter(Boolean)[0] ?? '';
        notes.push(`${proxy.label}: ${int(row.errors)} errors per run beside ${int(row.rps * meta.options.durationS)} successful responses (e.g. ${detail})`);
      }
    }
    lines.push('', ...notes.map((n) => `- ${cell(n)}`), ...(notes.length ? [''] : []));
  }
  return lines.join('\n');
}

function describe(meta) {
  const { machine, tools, options } = meta;
  return [
    `${machine.cpus} × ${machine.model}, Linux ${machine.kernel}, Node ${tools.node}, ${tools.nginx ?? 'nginx missing'}, ` +
      `${tools.haproxy?.replace(/ - https.*/, '') ?? 'HAProxy missing'}, ${tools.caddy ? `Caddy ${tools.caddy}` : 'Caddy missing'}, load: ${tools.loadgen}.`,
    `${options.reps} rep(s) × ${options.durationS} s measured (after ${options.warmupS} s warm-up), ${options.connections} connections, ` +
      `interleaved; medians. Load generator and origins on core 0, the proxy alone on core 1, one worker/thread/process each` +
      `${(options.workers ?? 1) > 1 ? ` (usher: ${options.workers} worker processes and their primary on cores 0-${options.workers - 1}, sharing core 0 with the load generator)` : ''}. ` +
      `CPU µs/req = utime+stime of the proxy's processes (/proc) over the measured run ÷ completed requests (round trips for ws). ` +
      `req/s counts successful responses only. Ratios: CPU ÷ X > 1 costs more than X; req/s ÷ X < 1 is slower than X. ` +
      `Run took ${meta.elapsed ?? '?'}.`,
  ].join('\n');
}

/** Open-loop mode: latency at a fixed rate; req/s is what was answered of the target. */
function openLoopMarkdown(results, meta, proxies) {
  const lines = [`# usher benchmark, open loop — ${meta.date}`, '', describe(meta), openLoopNote(meta), ''];
  for (const [id, scenario] of Object.entries(results)) {
    const rate = scenario.rate ? `${int(scenario.rate)} req/s` : dash;
    lines.push(`## ${scenario.title} (\`${id}\`) at ${rate}`, '', ...OPEN_LOOP_HEADER);
    const notes = [];
    for (const proxy of proxies) {
      const row = scenario.proxies[proxy.id];
      if (row.status !== 'ok') {
        lines.push(`| ${proxy.label} | ${cell(`${row.status === 'failed' ? '' : 'n/a: '}${row.reason}`)} |${' |'.repeat(10)}`);
        continue;
      }
      const label = row.sustained === false ? `${proxy.label} (not sustained)` : proxy.label;
      lines.push(
        `| ${label} | ${int(row.rps)} | ${ms(row.p50Ms)} | ${ms(row.p99Ms)} | ${ms(row.p999Ms)} | ${ms(row.maxMs)} | ` +
          `${fixed(row.cpuUsPerReq, 1)} | ${fixed(row.peakRssMiB, 1)} | ${int(row.errors)} | ${ms(row.scheduleLagP99Ms)} | ` +
          `${times(row.vsNginx?.p99)} | ${times(row.vsNginx?.cpu)} |`,
      );
      if (row.sustained === false) notes.push(`${proxy.label}: did not keep up with ${rate}: its latencies include the backlog`);
      if (row.note) notes.push(`${proxy.label}: ${row.note}`);
      if (row.errors) notes.push(`${proxy.label}: ${int(row.errors)} errors per run (e.g. ${row.reps.map((r) => r.errorDetail).filter(Boolean)[0] ?? ''})`);
    }
    lines.push('', ...notes.map((n) => `- ${cell(n)}`), ...(notes.length ? [''] : []));
  }
  return lines.join('\n');
}

function openLoopNote(meta) {
  const rate = meta.options.rate === 'auto' ? "half of usher's saturation req/s, measured per scenario at the start of this run" : `${meta.options.rate} req/s`;
  return (
    `Open loop (tools/open-loop.js): requests sent on a fixed schedule at ${rate}, over ${meta.options.connections} connections; ` +
    `latency from each request's intended send time to the end of its response (no coordinated omission). ` +
    `Client lag = how late the client itself queued requests (its own noise). ` +
    `CPU time comes in ${1000 / clockTicksPerSecond} ms clock ticks: at a low rate CPU µs/req is only good to ` +
    `${1000 / clockTicksPerSecond} ms ÷ the requests of a run (use a longer --duration).`
  );
}
