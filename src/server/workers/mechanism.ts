// How the workers share a listener's port (`workers_mechanism`; bench/README.md "2026-12-04:
// cluster round-robin against SO_REUSEPORT" has the measurements):
// - reuse_port: each worker binds the port itself with SO_REUSEPORT (net listen's `reusePort`,
//   Node >= 22.12 / 23.1) and the Linux kernel spreads new connections over the workers' sockets
//   (a hash of the connection's addresses and ports): no process in between, each worker its own
//   accept queue. Not load-aware: a busy worker gets its share all the same.
// - cluster: node:cluster's round-robin; the primary holds the one listening socket, accepts
//   every connection and passes it to a worker over IPC (one accept, one handle sent, per
//   connection). The only way on Node 20, and on platforms whose SO_REUSEPORT does not balance.
// A listener on port 0 is always shared through node:cluster: with SO_REUSEPORT every worker
// would get a port of its own.

export type WorkersMechanism = 'cluster' | 'reuse_port';

/** Whether this Node has net listen's `reusePort` (v22.12.0 in 22.x, v23.1.0 on) and the platform balances it (Linux). */
export function reusePortAvailable(version = process.versions.node, platform: string = process.platform): boolean {
  if (platform !== 'linux') return false;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/**
 * The mechanism a primary uses for its whole life (its workers must agree: a socket bound with
 * SO_REUSEPORT and the primary's own one without it cannot share a port). auto: reuse_port where
 * available, cluster otherwise; reuse_port where it is not available falls back to cluster, with
 * `fallback` saying why.
 */
export function workersMechanism(setting: 'auto' | WorkersMechanism, available = reusePortAvailable()): { mechanism: WorkersMechanism; fallback?: string } {
  if (setting === 'cluster') return { mechanism: 'cluster' };
  if (available) return { mechanism: 'reuse_port' };
  if (setting === 'auto') return { mechanism: 'cluster' };
  return { mechanism: 'cluster', fallback: `workers_mechanism: reuse_port needs Node >= 22.12 (or >= 23.1) on Linux; this is Node ${process.versions.node} on ${process.platform}: using cluster` };
}

/** The environment variable a primary sets for its workers: "1" when they bind with SO_REUSEPORT. */
export const REUSE_PORT_ENV = 'USHER_REUSE_PORT';
