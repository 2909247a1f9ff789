// How many worker processes `workers: auto` means: one per CPU this process may run on
// (os.availableParallelism: the affinity mask, as taskset or a cpuset sets it), but no more than
// a cgroup v2 CPU quota allows (a container given 2 CPUs on a 64-core host: 2, not 64; Node 20
// does not read the quota itself).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** The CPU quota of this process's cgroup (cpu.max "quota period"), rounded up; undefined when unlimited or unknown. */
export function cgroupCpus(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota === undefined || quota === 'max' || period === undefined) return undefined;
    const n = Number(quota) / Number(period);
    return Number.isFinite(n) && n > 0 ? Math.max(1, Math.ceil(n)) : undefined;
  } catch {
    return undefined;
  }
}

export function workerCount(setting: 'auto' | number, cpus = availableParallelism(), quota = cgroupCpus()): number {
  if (setting !== 'auto') return setting;
  return Math.max(1, Math.min(cpus, quota ?? cpus));
}

/** `usher serve --workers`: "auto" or 1..256; undefined when the text is neither. */
export function parseWorkers(text: string): 'auto' | number | undefined {
  if (text === 'auto') return 'auto';
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 256 ? n : undefined;
}
