// `rate_limits.connections_per_client`: open connections per client address, across every
// listener of this process. Checked as a connection is accepted, before anything is read from
// it; one over the limit is closed at once (there is no request yet to answer).
//
// With `workers` > 1 the count is the primary's, across the workers (one IPC round trip per
// accepted connection, and a message when it closes), so that the limit holds per usher
// instance (a concurrency slot per address in the primary, freed when a worker dies); when the
// primary cannot answer (it died, this worker drains) the worker's own count decides. The worker
// keeps its own count of every connection it holds either way.
import type { Socket } from 'node:net';

/** The primary's count of open connections per client address, across the workers. */
export interface SharedConnections {
  /** One more connection from `ip`: true when it may stay, false over `limit`, null when the primary cannot answer. */
  acquire(ip: string, limit: number): Promise<boolean | null>;
  /** A connection that `acquire` admitted closed. */
  release(ip: string): void;
}

export class ConnectionCounts {
  private readonly open = new Map<string, number>();
  refused = 0;

  constructor(private readonly shared?: SharedConnections) {}

  /** True when `socket` may stay (a promise of it when the primary counts); counts it until it closes. */
  admit(socket: Socket, limit: number | undefined): boolean | Promise<boolean> {
    if (this.shared === undefined || limit === undefined) return this.admitHere(socket, limit, false);
    const ip = socket.remoteAddress ?? '';
    const shared = this.shared;
    return shared.acquire(ip, limit).then((ok) => {
      // Gone while the primary counted it: nothing to count (a 'close' already past would never release it).
      if (ok === null) return !socket.destroyed && this.admitHere(socket, limit, false);
      if (!ok) {
        this.refused++;
        return false;
      }
      // Gone while the primary counted it: its slot goes back at once.
      if (socket.destroyed) {
        shared.release(ip);
        return false;
      }
      return this.admitHere(socket, undefined, true);
    });
  }

  private admitHere(socket: Socket, limit: number | undefined, shared: boolean): boolean {
    const ip = socket.remoteAddress ?? '';
    const n = this.open.get(ip) ?? 0;
    if (limit !== undefined && n >= limit) {
      this.refused++;
      return false;
    }
    this.open.set(ip, n + 1);
    socket.once('close', () => {
      const m = this.open.get(ip) ?? 1;
      if (m <= 1) this.open.delete(ip);
      else this.open.set(ip, m - 1);
      if (shared) this.shared!.release(ip);
    });
    return true;
  }

  count(ip: string): number {
    return this.open.get(ip) ?? 0;
  }
}
