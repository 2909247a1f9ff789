// `rate_limits.connections_per_client`: open connections per client address, across every
// listener of this process. Checked as a connection is accepted, before anything is read from
// it; one over the limit is closed at once (there is no request yet to answer).
import type { Socket } from 'node:net';

export class ConnectionCounts {
  private readonly open = new Map<string, number>();
  refused = 0;

  /** True when `socket` may stay; counts it until it closes. */
  admit(socket: Socket, limit: number | undefined): boolean {
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
    });
    return true;
  }

  count(ip: string): number {
    return this.open.get(ip) ?? 0;
  }
}
