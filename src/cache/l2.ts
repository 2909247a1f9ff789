// A memory store's optional shared second level (`caches.NAME.l2`): small stored responses are
// also written to Redis, so that another usher (or another worker) that misses in its own
// memory finds them there instead of asking the origin; purges and §4.4 invalidations delete
// there too and are published on the store's channel, which every instance subscribes to and
// applies to its own memory.
//
// Redis keys: PREFIX STORE ":e:" KEY (an entry, l2-entry.ts, with a TTL from its freshness and
// stale lifetime), PREFIX STORE ":t:" TAG (a set of the entry keys carrying a purge tag, kept
// as long as its longest entry). Channel: PREFIX STORE ":purge".
//
// Failure policy: the L2 never fails a request. A lookup waits at most `timeout` (the offline
// queue is off: while Redis is down it is a miss at once), a write or a delete is fire and
// forget; an error counts in `errors` and is a miss. While Redis is unreachable the store is a
// plain memory store; ioredis reconnects with backoff and a PING every second rechecks a
// connection that looks ready, so the L2 resumes by itself. Each change between reachable and
// unreachable is one log line. A purge made while Redis is down reaches this instance's
// memory only (the others keep their copies until they expire).
//
// Lifecycle as the rate-limit stores': built pure, start() connects (never under validate,
// explain or a rejected reload), close() quits.
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { L2Config } from '../filters/cache/config.js';
import { createRedisClient, loadIoredis, type IoRedis } from '../util/redis.js';
import { decodeEntry, encodeEntry, l2Ttl } from './l2-entry.js';
import type { CacheStore, Purge, SecondLevel, StoredResponse } from './store.js';

// KEYS[1]: a tag's set; ARGV[1]: the entry key, ARGV[2]: its TTL (s). The set lives as long as its longest entry.
const TAG_LUA = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

type L2Client = (Redis | Cluster) & { usherTag(key: string, entry: string, ttl: number): Promise<number> };

/** A purge as published: who sent it (an instance ignores its own) and what. */
interface Message {
  from: string;
  purge?: Purge;
  keys?: string[];
}

const RECHECK_MS = 1000;

/** Glob-escapes `s` for SCAN MATCH. */
function glob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export class L2 implements SecondLevel {
  /** This process's id in published purges. */
  readonly id = randomUUID();
  readonly stats = { hits: 0, misses: 0, errors: 0, writes: 0 };
  /**
   * Purges and invalidations begun (local or another instance's) and those still deleting in
   * Redis: a lookup that overlapped one is a miss, or its answer could put back into memory
   * what the purge just removed (a GET sent before the DEL, or before a tag's SMEMBERS ended).
   */
  private purgeGen = 0;
  private purging = 0;
  private client: L2Client | undefined;
  private sub: Redis | Cluster | undefined;
  private up = false;
  private everUp = false;
  private starting = false;
  private closed = false;
  private log: Logger | undefined;
  private recheck: NodeJS.Timeout | undefined;
  private readonly entryPrefix: string;
  private readonly tagPrefix: string;
  readonly channel: string;

  constructor(
    readonly store: CacheStore,
    readonly config: L2Config,
  ) {
    const base = `${config.prefix}${store.name}:`;
    this.entryPrefix = `${base}e:`;
    this.tagPrefix = `${base}t:`;
    this.channel = `${base}purge`;
  }

  static fingerprint(c: L2Config | undefined): string {
    return c === undefined ? '' : JSON.stringify(c);
  }

  get reachable(): boolean {
    return this.up;
  }

  /** The subscriber connection listens on the channel (the others' purges reach this instance). */
  subscribed = false;

  get started(): boolean {
    return (this.client !== undefined || this.starting) && !this.closed;
  }

  start(log: Logger | undefined): void {
    this.log = log;
    if (this.client !== undefined || this.starting || this.closed) return;
    this.starting = true;
    void loadIoredis().then(
      (io) => {
        this.starting = false;
        if (!this.closed) this.connect(io);
      },
      (err: unknown) => {
        this.starting = false;
        this.log?.error({ err, cache: this.store.name }, 'cache l2: ioredis could not be loaded; the store stays memory only');
      },
    );
  }

  private connect(io: IoRedis): void {
    const c = this.config;
    const own = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: c.timeout, connectTimeout: Math.max(1000, c.timeout * 20) };
    const client = createRedisClient(io, c, own) as L2Client;
    client.defineCommand('usherTag', { numberOfKeys: 1, lua: TAG_LUA });
    client.on('error', (err: Error) => this.down(err.message));
    client.on('close', () => this.down('connection closed'));
    client.on('ready', () => this.ready());
    this.client = client;
    // The subscriber: its own connection (a subscribed connection runs no other command); ioredis subscribes again after a reconnect.
    const sub = createRedisClient(io, c, { ...own, commandTimeout: undefined });
    sub.on('error', () => {});
    sub.on('close', () => void (this.subscribed = false));
    sub.on('ready', () => {
      sub.subscribe(this.channel).then(
        () => void (this.subscribed = this.sub === sub),
        () => {},
      );
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.apply(message);
    });
    this.sub = sub;
    this.recheck = setInterval(() => this.ping(), RECHECK_MS);
    this.recheck.unref();
  }

  /** PING: a connection that looks ready but does not answer is down; one that answers again is up. */
  private ping(): void {
    const client = this.client;
    if (client === undefined || client.status !== 'ready') return;
    client.ping().then(
      () => this.ready(),
      (err: unknown) => {
        this.down((err as Error).message);
        // Silent but connected (a hung server, a half-open connection): start over.
        if (this.client === client) client.disconnect(true);
      },
    );
  }

  private usable(): L2Client | undefined {
    const client = this.client;
    return client !== undefined && client.status === 'ready' ? client : undefined;
  }

  /** The entry stored under `key`, or undefined (none, Redis unreachable or slower than `timeout`, a value that does not decode). Never rejects. */
  async get(key: string): Promise<StoredResponse | undefined> {
    const client = this.usable();
    if (client === undefined) {
      this.stats.misses++;
      return undefined;
    }
    let buf: Buffer | null;
    const gen = this.purgeGen;
    const purging = this.purging;
    try {
      buf = await client.getBuffer(this.entryPrefix + key);
    } catch {
      this.stats.errors++;
      this.stats.misses++;
      return undefined;
    }
    if (purging > 0 || this.purging > 0 || gen !== this.purgeGen) buf = null;
    const r = buf === null ? undefined : decodeEntry(buf);
    if (r === undefined) this.stats.misses++;
    else this.stats.hits++;
    return r;
  }

  /** Writes `r` (stored in memory under `key`) when it is small enough; asynchronous, never throws. */
  write(key: string, r: StoredResponse, now: number, staleIfError: number): void {
    if (r.file !== undefined || r.body.length > this.config.max_object_size) return;
    const client = this.usable();
    if (client === undefined) return;
    const ttl = l2Ttl(r, now, staleIfError);
    if (ttl <= 0) return;
    const k = this.entryPrefix + key;
    const value = encodeEntry(r);
    const done = (): void => void this.stats.writes++;
    const failed = (): void => void this.stats.errors++;
    client.set(k, value, 'EX', ttl).then(done, failed);
    for (const tag of r.tags) client.usherTag(this.tagPrefix + tag, k, ttl).catch(failed);
  }

  /**
   * A purge made on this instance: deleted in Redis, then published to the others (so that one
   * that hears of it finds nothing in Redis to refill from). Resolves when done (each command
   * bounded by the timeout), never rejects; Redis down: nothing to do.
   */
  purge(p: Purge): Promise<void> {
    const client = this.usable();
    if (client === undefined) return Promise.resolve();
    return this.purgingWhile(
      this.purgeRemote(client, p).then(
        () => this.publish(client, { from: this.id, purge: p }),
        () => {
          this.stats.errors++;
          this.publish(client, { from: this.id, purge: p });
        },
      ),
    );
  }

  /** `work` (a purge's deletes in Redis) counted as under way until it settles (see purgeGen). */
  private purgingWhile(work: Promise<void>): Promise<void> {
    this.purgeGen++;
    this.purging++;
    return work.finally(() => {
      this.purging--;
      this.purgeGen++;
    });
  }

  /** §4.4: invalidated keys, as purge. */
  invalidate(keys: readonly string[]): Promise<void> {
    const client = this.usable();
    if (client === undefined || keys.length === 0) return Promise.resolve();
    return this.purgingWhile(
      Promise.all(keys.map((k) => client.del(this.entryPrefix + k))).then(
        () => this.publish(client, { from: this.id, keys: [...keys] }),
        () => {
          this.stats.errors++;
          this.publish(client, { from: this.id, keys: [...keys] });
        },
      ),
    );
  }

  private async purgeRemote(client: L2Client, p: Purge): Promise<void> {
    if (p.url !== undefined) await client.del(this.entryPrefix + p.url);
    else if (p.tag !== undefined) {
      const set = this.tagPrefix + p.tag;
      const keys = await client.smembers(set);
      await Promise.all(keys.map((k) => client.del(k)));
      await client.del(set);
    } else if (p.prefix !== undefined) {
      const nodes: Redis[] = this.config.cluster !== undefined ? (client as Cluster).nodes('master') : [client as Redis];
      const match = `${glob(this.entryPrefix + p.prefix)}*`;
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          cursor = next;
          await Promise.all(keys.map((k) => client.del(k)));
        } while (cursor !== '0');
      }
    }
  }

  private publish(client: L2Client, m: Message): void {
    client.publish(this.channel, JSON.stringify(m)).catch(() => void this.stats.errors++);
  }

  /** A purge published by another instance (or worker): applied to this memory store. */
  private apply(message: string): void {
    let m: Message;
    try {
      m = JSON.parse(message) as Message;
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || m.from === this.id) return;
    this.purgeGen++;
    if (Array.isArray(m.keys)) {
      for (const k of m.keys) if (typeof k === 'string') this.store.invalidate(k);
      return;
    }
    const p = m.purge;
    if (typeof p !== 'object' || p === null) return;
    const n = [p.url, p.prefix, p.tag].filter((v) => typeof v === 'string' && v !== '').length;
    if (n === 1) this.store.purge(p);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.recheck !== undefined) clearInterval(this.recheck);
    this.recheck = undefined;
    const clients = [this.client, this.sub];
    this.client = undefined;
    this.sub = undefined;
    this.up = false;
    await Promise.all(
      clients.map(async (c) => {
        if (c === undefined) return;
        c.removeAllListeners('close');
        c.removeAllListeners('ready');
        this.subscribed = false;
        c.removeAllListeners('message');
        if (c.status !== 'ready') return void c.disconnect();
        try {
          await c.quit();
        } catch {
          c.disconnect();
        }
      }),
    );
  }

  private ready(): void {
    if (this.up || this.client === undefined || this.client.status !== 'ready') return;
    this.up = true;
    const first = !this.everUp;
    this.everUp = true;
    this.log?.info({ cache: this.store.name }, first ? 'cache l2 connected' : 'cache l2 reachable again: shared entries and purges resume');
  }

  private warnedStart = false;

  private down(why: string): void {
    if (!this.up) {
      if (!this.everUp && this.client !== undefined && !this.warnedStart) {
        this.warnedStart = true;
        this.log?.warn({ cache: this.store.name, err: why }, 'cache l2 not reachable yet: the store serves from memory only; reconnecting with backoff');
      }
      return;
    }
    this.up = false;
    this.log?.warn({ cache: this.store.name, err: why }, 'cache l2 unreachable: the store serves from memory only; reconnecting with backoff');
  }
}
