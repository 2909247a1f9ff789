// DNS discovery: servers given by host name are re-resolved every `refresh` (A and/or AAAA
// records, as Envoy's STRICT_DNS and nginx's `server ... resolve`; or SRV records, RFC 2782),
// and the cluster swaps in a new endpoint set when the answer changes. A failed lookup keeps the
// last good answer: a DNS outage must not empty a working pool.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { DnsConfig } from '../config/types.js';

/** One address a name resolved to; SRV answers also bring a port, weight and priority. */
export interface Target {
  readonly address: string;
  readonly port: number | null;
  readonly weight: number | null;
  /** Rank of the SRV priority among the answer's priorities (0 = lowest value = first). */
  readonly priority: number | null;
}

/** Sorted targets per name. */
export type Resolved = ReadonlyMap<string, readonly Target[]>;

export class DnsDiscovery {
  private readonly config: DnsConfig;
  private readonly names: readonly string[];
  private readonly onChange: (resolved: Resolved) => void;
  /** Made by start(): building a discovery sends nothing (`usher explain`, a rejected reload). */
  private resolver: InstanceType<typeof dns.Resolver> | null = null;
  private readonly last = new Map<string, readonly Target[]>();
  private readonly lastKey = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Completed rounds (for tests and the admin API). */
  rounds = 0;

  constructor(config: DnsConfig, names: readonly string[], onChange: (resolved: Resolved) => void) {
    this.config = config;
    this.names = names;
    this.onChange = onChange;
  }

  /** Resolves at once, then every `refresh`. Once only: a stopped discovery stays stopped. */
  start(): void {
    if (this.resolver !== null || this.stopped) return;
    this.resolver = new dns.Resolver({ timeout: Math.min(this.config.refresh, 2000), tries: 2 });
    if (this.config.servers.length > 0) this.resolver.setServers(this.config.servers);
    void this.round();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // Queries in flight would run to their timeout (up to 2 × 2 s) after close: end them now.
    this.resolver?.cancel();
  }

  private async round(): Promise<void> {
    this.timer = null;
    let changed = false;
    await Promise.all(
      this.names.map(async (name) => {
        const targets = this.config.srv ? await this.resolveSrv(name) : (await this.addresses(name))?.map(plain);
        if (targets === undefined || targets.length === 0) return; // keep the last good answer
        const key = JSON.stringify(targets);
        if (this.lastKey.get(name) !== key) {
          this.last.set(name, targets);
          this.lastKey.set(name, key);
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

  private async addresses(name: string): Promise<string[] | undefined> {
    const family = this.config.family;
    const [v4, v6] = await Promise.all([
      family === 'ipv6' ? [] : this.resolver!.resolve4(name).catch(() => undefined),
      family === 'ipv4' ? [] : this.resolver!.resolve6(name).catch(() => undefined),
    ]);
    if (v4 === undefined && v6 === undefined) return undefined;
    return [...new Set([...(v4 ?? []), ...(v6 ?? [])])].filter((a) => isIP(a) !== 0).sort();
  }

  /** RFC 2782: each record names a target host and port; its addresses become targets. */
  private async resolveSrv(name: string): Promise<Target[] | undefined> {
    const records = await this.resolver!.resolveSrv(name).catch(() => undefined);
    if (records === undefined) return undefined;
    const ranks = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
    const out: Target[] = [];
    for (const r of records) {
      // "A Target of '.' means that the service is decidedly not available at this domain."
      if (r.name === '' || r.name === '.') continue;
      const addresses = isIP(r.name) !== 0 ? [r.name] : ((await this.addresses(r.name)) ?? []);
      for (const address of addresses) out.push({ address, port: r.port, weight: r.weight, priority: ranks.indexOf(r.priority) });
    }
    return out.sort((a, b) => (a.address === b.address ? (a.port ?? 0) - (b.port ?? 0) : a.address < b.address ? -1 : 1));
  }
}

function plain(address: string): Target {
  return { address, port: null, weight: null, priority: null };
}
