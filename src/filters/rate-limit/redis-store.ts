// A shared store: GCRA buckets in Redis, one EVALSHA per decision (ioredis' defineCommand falls
// back to EVAL once after a script flush). The script reads Redis' own clock (TIME), so usher
// instances with skewed clocks share one timeline, and it is atomic on the server: two
// instances deciding on one key at once cannot both take the last token. Each key expires by
// itself once its bucket is full again (PX).
//
// Lifecycle: created pure; start() opens the connection (never under validate, explain or a
// rejected reload); close() quits. While Redis is down or slower than `timeout`, take() rejects
// at once or at the timeout (offline queue off, commandTimeout), and the policy's
// on_store_error decides. ioredis reconnects with the backoff of `retryStrategy`; each change
// between reachable and unreachable is one log line.
import type { Cluster, Redis, RedisOptions } from 'ioredis';

type IoRedis = { Redis: typeof Redis; Cluster: typeof Cluster };
import type { Logger } from 'pino';
import type { RedisStoreConfig } from './config.js';
import { decide, type Decision } from './gcra.js';

// KEYS[1]: the bucket. ARGV[1]: interval (µs), ARGV[2]: burst * interval (µs).
// Returns {allowed (0/1), tat' - now (µs)}.
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
local d = nxt - now
if d > cap then return {0, d} end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil(d / 1000) + 1)
return {1, d}
`;

type GcraClient = (Redis | Cluster) & { usherGcra(key: string, interval: number, cap: number): Promise<[number, number]> };

/** Reconnect backoff: 100 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
export function reconnectDelay(times: number): number {
  const base = Math.min(2000, 100 * 2 ** Math.min(times - 1, 5));
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

export class RedisStore {
  readonly name: string;
  readonly fingerprint: string;
  private client: GcraClient | undefined;
  private up = false;
  private everUp = false;
  private log: Logger | undefined;
  /** The policies on this store, for the mode-change log line. */
  readonly policies = new Map<string, 'fail_open' | 'fail_closed'>();
  readonly stats = { calls: 0, errors: 0 };

  constructor(readonly config: RedisStoreConfig) {
    this.name = config.name;
    this.fingerprint = RedisStore.fingerprint(config);
  }

  static fingerprint(c: RedisStoreConfig): string {
    return JSON.stringify(c);
  }

  get reachable(): boolean {
    return this.up;
  }

  /** start() was called and close() was not. */
  get started(): boolean {
    return (this.client !== undefined || this.starting) && !this.closed;
  }

  /** Opens the connection. ioredis is loaded here, the first time (about 0.5 s of startup that `usher validate`, `explain` and configs without a Redis store never pay). */
  start(log: Logger | undefined): void {
    this.log = log;
    if (this.client !== undefined || this.starting) return;
    this.starting = true;
    void import('ioredis').then(
      (ioredis) => {
        this.starting = false;
        if (!this.closed) this.connect({ Redis: ioredis.Redis, Cluster: ioredis.Cluster });
      },
      (err: unknown) => {
        this.starting = false;
        this.log?.error({ err, store: this.name }, 'rate-limit store: ioredis could not be loaded');
      },
    );
  }

  private starting = false;
  private closed = false;

  private connect({ Redis, Cluster }: IoRedis): void {
    const c = this.config;
    const own: RedisOptions = {
      // Commands never wait for a connection: while down, a decision fails at once.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: c.timeout,
      connectTimeout: Math.max(1000, c.timeout * 10),
      retryStrategy: reconnectDelay,
    };
    const auth: RedisOptions = {};
    if (c.username !== undefined) auth.username = c.username;
    if (c.password !== undefined) auth.password = c.password;
    const options = { ...(c.options as RedisOptions), ...auth, ...own };
    let client: Redis | Cluster;
    if (c.cluster !== undefined) {
      // Every key of a decision is one key (KEYS[1]), so each script call goes to the one node
      // that holds its slot; no hash tags are needed.
      client = new Cluster(c.cluster, { ...c.cluster_options, enableOfflineQueue: false, clusterRetryStrategy: reconnectDelay, redisOptions: options });
    } else if (c.sentinel !== undefined) {
      const sn = c.sentinel;
      const sentinel: RedisOptions = { sentinels: sn.nodes, name: sn.name, sentinelRetryStrategy: reconnectDelay, sentinelCommandTimeout: Math.max(1000, c.timeout * 10) };
      if (sn.username !== undefined) sentinel.sentinelUsername = sn.username;
      if (sn.password !== undefined) sentinel.sentinelPassword = sn.password;
      client = new Redis({ ...options, ...sentinel });
    } else {
      client = c.url === undefined ? new Redis(options) : new Redis(c.url, options);
    }
    client.defineCommand('usherGcra', { numberOfKeys: 1, lua: GCRA_LUA });
    // Attached at creation: an ioredis client without an error listener would crash the process.
    client.on('error', (err: Error) => this.down(err.message));
    client.on('close', () => this.down('connection closed'));
    client.on('ready', () => this.ready());
    this.client = client as GcraClient;
  }

  /** One decision: rejects when Redis is unreachable or slower than the store's timeout. */
  async take(key: string, interval: number, burst: number): Promise<Decision> {
    const client = this.client;
    this.stats.calls++;
    if (client === undefined || client.status !== 'ready') {
      this.stats.errors++;
      throw new Error(`rate-limit store ${this.name} is not connected`);
    }
    const iu = Math.max(1, Math.round(interval * 1000));
    let r: [number, number];
    try {
      r = await client.usherGcra(this.config.prefix + key, iu, iu * burst);
    } catch (err) {
      this.stats.errors++;
      this.down((err as Error).message);
      throw err;
    }
    if (!this.up) this.ready();
    const d = r[1] / 1000;
    const dec = decide(d, iu / 1000, burst);
    // The server's verdict stands (it is the one stored); decide() supplies remaining and reset.
    return r[0] === 1 ? (dec.allowed ? dec : { allowed: true, remaining: 0, reset: d }) : dec.allowed ? { allowed: false, remaining: 0, reset: 0 } : dec;
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    if (client === undefined) return;
    this.client = undefined;
    this.up = false;
    client.removeAllListeners('close');
    client.removeAllListeners('ready');
    if (client.status !== 'ready') {
      client.disconnect();
      return;
    }
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  }

  private ready(): void {
    if (this.up || this.client === undefined || this.client.status !== 'ready') return;
    this.up = true;
    const first = !this.everUp;
    this.everUp = true;
    this.log?.info({ store: this.name }, first ? 'rate-limit store connected' : 'rate-limit store reachable again: shared limits resume');
  }

  private down(why: string): void {
    if (!this.up) {
      if (!this.everUp && this.client !== undefined && !this.warnedStart) {
        this.warnedStart = true;
        this.log?.warn({ store: this.name, err: why, policies: Object.fromEntries(this.policies) }, 'rate-limit store not reachable yet: its policies apply on_store_error; reconnecting with backoff');
      }
      return;
    }
    this.up = false;
    this.log?.warn({ store: this.name, err: why, policies: Object.fromEntries(this.policies) }, 'rate-limit store unreachable: its policies apply on_store_error; reconnecting with backoff');
  }

  private warnedStart = false;
}
