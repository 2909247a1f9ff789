// CPU time and peak memory of a process tree, read from /proc (Linux).
//
// CPU: utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks, all threads of the
// process included) summed over the process and its live descendants — nginx's master and
// worker, for instance. A delta across the measured run divided by the completed requests
// gives CPU µs per request. Memory: VmHWM (peak resident set) from /proc/PID/status, summed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const CLK_TCK = readClockTicks();

function readClockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** Fields of /proc/PID/stat after the command name, which may itself contain spaces. */
function statFields(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // exited meanwhile
  }
}

/** `pid` and all its live descendants. */
export function processTree(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (!fields) continue;
    const ppid = Number(fields[1]); // field 4
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
  }
  const tree = [];
  const queue = [pid];
  while (queue.length) {
    const next = queue.shift();
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** Map pid → CPU microseconds (user + system) used so far, for the tree under `pid`. */
export function cpuSnapshot(pid) {
  const snapshot = new Map();
  for (const p of processTree(pid)) {
    const fields = statFields(p);
    if (!fields) continue;
    const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 (utime) and 15 (stime)
    snapshot.set(p, (ticks * 1e6) / CLK_TCK);
  }
  return snapshot;
}

/** CPU microseconds used between two snapshots; a process born in between counts whole. */
export function cpuDeltaUs(before, after) {
  let total = 0;
  for (const [p, us] of after) total += us - (before.get(p) ?? 0);
  return total;
}

/** Sum of VmHWM (peak RSS, KiB) over the tree under `pid`. */
export function peakRssKiB(pid) {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const match = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (match) total += Number(match[1]);
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Fraction (0–1) of all cores' time spent busy over `ms`, from the first line of /proc/stat. */
export async function machineBusy(ms = 500) {
  const sample = () => {
    const [, ...ticks] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const idle = ticks[3] + ticks[4]; // idle + iowait
    return { idle, total: ticks.reduce((a, b) => a + b, 0) };
  };
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  const total = after.total - before.total;
  return total > 0 ? 1 - (after.idle - before.idle) / total : 0;
}

export const clockTicksPerSecond = CLK_TCK;
