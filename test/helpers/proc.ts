import { readFileSync } from 'node:fs';

/** A child process's memory from /proc/PID/status: VmRSS (now) or VmHWM (its peak so far), in bytes. */
export function rss(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (kb === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}
