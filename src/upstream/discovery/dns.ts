// DNS discovery: servers given by host name are re-resolved every `refresh` (A and/or AAAA
// records, as Envoy's STRICT_DNS and nginx's `server ... resolve`), and the cluster swaps in a
// new endpoint set when the answer changes. A failed lookup keeps the last good addresses: a
// DNS outage must not empty a working pool.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { DnsConfig } from '../../config/types.js';

/** Sorted, de-duplicated addresses per name. */
export type Resolved = ReadonlyMap<string, readonly string[]>;

export class DnsDiscovery {
  private readonly config: DnsConfig;
  private readonly names: readonly string[];
  private readonly onChange: (resolved: Resolved) => void;
  private readonly resolver: InstanceType<typeof dns.Resolver>;
  private readonly last = new Map<string, readonly string[]>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Completed rounds (for tests and the admin API). */
  rounds = 0;

  constructor(config: DnsConfig, names: readonly string[], onChange: (resolved: Resolved) => void) {
    this.config = config;
    this.names = names;
    this.onChange = onChange;
    this.resolver = new dns.Resolver({ timeout: Math.min(config.refresh, 2000), tries: 2 });
    if (config.servers.length > 0) this.resolver.setServers(config.servers);
  }

  start(): void {
    void this.round();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async round(): Promise<void> {
    this.timer = null;
    let changed = false;
    await Promise.all(
      this.names.map(async (name) => {
        const addresses = await this.resolve(name);
        if (addresses === undefined || addresses.length === 0) return; // keep the last good answer
        const prev = this.last.get(name);
        if (prev === undefined || prev.length !== addresses.length || prev.some((a, i) => a !== addresses[i])) {
          this.last.set(name, addresses);
          changed = true;
        }
      }),
    );
    if (this.stopped) return;
    this.rounds++;
    if (changed) this.onChange(new Map(this.last));
    this.timer = setTimeout(() => void this.round(), this.config.refresh);
    this.timer.unref();
  }

  private async resolve(name: string): Promise<string[] | undefined> {
    const family = this.config.family;
    const [v4, v6] = await Promise.all([
      family === 'ipv6' ? [] : this.resolver.resolve4(name).catch(() => undefined),
      family === 'ipv4' ? [] : this.resolver.resolve6(name).catch(() => undefined),
    ]);
    if (v4 === undefined && v6 === undefined) return undefined;
    return [...new Set([...(v4 ?? []), ...(v6 ?? [])])].filter((a) => isIP(a) !== 0).sort();
  }
}
