// ACME state in Redis, shared by usher instances on several machines: one account, one
// certificate per domain for all of them, one order at a time across the fleet.
//
//   <prefix>account          the account key (PEM; sealed with encryption_key when set)
//   <prefix>cert:<domain>    {"cert": chain PEM, "key": private key PEM (sealed)} — one value, so
//                            a reader never sees a certificate without its key
//   <prefix>version          incremented after each certificate written: the others reload
//   <prefix>lock             the order lock: SET NX PX with this instance's token, refreshed
//                            (compare-and-PEXPIRE) during the order, released by compare-and-DEL
//   <prefix>challenges       hash of the pending challenges ("http:<token>", "alpn:<domain>"):
//                            the CA may reach any instance, so every instance answers them
//   <prefix>ack:<field>      set of the instances that answer a challenge
//   <prefix>instances        sorted set: instance → when it last polled (who must acknowledge)
//
// Every instance polls (version, challenges) once a second, from before its listeners open. The
// holder of the lock publishes a challenge, then waits until every instance seen polling in the
// last few seconds has acknowledged it (at most CHALLENGE_WAIT_MS) before the CA is told to
// validate; an instance acknowledges once it has the challenge and its listeners accept
// connections (so one still starting holds the order up, a few seconds at most).
//
// Failure policy: while Redis is unreachable, certificates already loaded stay served, nothing
// is ordered (the lock cannot be confirmed), ioredis reconnects with backoff, and each change
// between reachable and unreachable is one log line (and the usher_acme_store_up gauge).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { AcmeRedisConfig } from '../config/types.js';
import { loadCertificate, type LoadedCertificate } from '../certificate.js';
import { createRedisClient, loadIoredis, type IoRedis } from '../../util/redis.js';
import type { AcmeStorage, PemPair, SharedStorageEvents } from './storage.js';

/** The lock lives this long without a refresh (a holder that died frees it by then). */
export const REDIS_LOCK_TTL_MS = 60_000;
const LOCK_REFRESH_MS = 15_000;
export const POLL_MS = 1000;
/** An instance that has not polled for this long no longer has to acknowledge challenges. */
const ALIVE_MS = 4 * POLL_MS;
const CHALLENGE_WAIT_MS = 10_000;
const CHALLENGE_TTL_MS = 10 * 60_000;

const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const REFRESH_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

type Client = (Redis | Cluster) & {
  usherAcmeRelease(key: string, token: string): Promise<number>;
  usherAcmeRefresh(key: string, token: string, ttl: number): Promise<number>;
};

const SEALED = 'usher-sealed:v1:';

/** AES-256-GCM with the Redis key name as associated data: a sealed value cannot be moved to another key. */
export class Sealer {
  private readonly key: Buffer | undefined;
  constructor(secret: string | undefined) {
    this.key = secret === undefined ? undefined : createHash('sha256').update(secret).digest();
  }

  seal(name: string, plain: string): string {
    if (this.key === undefined) return plain;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(name));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return SEALED + [iv, c.getAuthTag(), body].map((b) => b.toString('base64')).join(':');
  }

  open(name: string, stored: string): string {
    if (!stored.startsWith(SEALED)) return stored; // written before encryption_key was set
    if (this.key === undefined) throw new Error(`${name} is encrypted in Redis: set acme.storage.redis.encryption_key`);
    const [iv, tag, body] = stored.slice(SEALED.length).split(':').map((p) => Buffer.from(p, 'base64'));
    const d = createDecipheriv('aes-256-gcm', this.key, iv!);
    d.setAAD(Buffer.from(name));
    d.setAuthTag(tag!);
    try {
      return Buffer.concat([d.update(body!), d.final()]).toString('utf8');
    } catch {
      throw new Error(`${name} cannot be decrypted: acme.storage.redis.encryption_key differs from the one it was written with`);
    }
  }
}

type Log = { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };

export class RedisAcmeStore implements AcmeStorage {
  readonly describe: Record<string, unknown>;
  readonly lockRefreshMs = LOCK_REFRESH_MS;
  /** Names this instance in the lock, the instance set and the acknowledgements. */
  readonly token = `${hostname()} ${process.pid} ${randomBytes(6).toString('hex')}`;
  private readonly p: string;
  private readonly sealer: Sealer;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private events: SharedStorageEvents | undefined;
  private log: Log | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private up = false;
  private everUp = false;
  private version: string | null | undefined;
  /** Challenge fields this instance acknowledged (so it acknowledges each once). */
  private acked = new Set<string>();
  /** Polls done. */
  polls = 0;
  /** Challenges are acknowledged only once this instance's listeners accept connections. */
  private answering = false;

  constructor(readonly config: AcmeRedisConfig) {
    this.p = config.prefix;
    this.sealer = new Sealer(config.encryption_key);
    this.describe = { storage: 'redis', prefix: config.prefix, ...(config.url === undefined ? {} : { redis: redactUrl(config.url) }) };
  }

  serving(): void {
    this.answering = true;
  }

  get reachable(): boolean {
    return this.up;
  }

  start(events: SharedStorageEvents, log: Log): void {
    this.events = events;
    this.log = log;
    void this.connect().catch(() => undefined);
    this.schedulePoll(0);
  }

  private connect(): Promise<Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    return (this.connecting ??= loadIoredis().then((io: IoRedis) => {
      if (this.client !== undefined) return this.client;
      const c = this.config;
      const client = createRedisClient(io, c, {
        // Nothing waits for a connection: while Redis is down a command fails at once and the
        // manager keeps what it has.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: c.timeout,
        connectTimeout: Math.max(1000, c.timeout),
      }) as Client;
      client.defineCommand('usherAcmeRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
      client.defineCommand('usherAcmeRefresh', { numberOfKeys: 1, lua: REFRESH_LUA });
      client.on('error', (err: Error) => this.setUp(false, err.message));
      client.on('close', () => this.setUp(false, 'connection closed'));
      this.client = client;
      if (this.closed) client.disconnect();
      return client;
    }));
  }

  /** The client when connected; rejects at once otherwise. */
  private async ready(): Promise<Client> {
    const c = await this.connect();
    if (c.status !== 'ready') {
      // ioredis marks a fresh connection 'connect' then 'ready': give it the timeout to get there.
      if (c.status === 'connecting' || c.status === 'connect') await waitReady(c, this.config.timeout);
      if ((c.status as string) !== 'ready') throw new Error(`the ACME store (Redis) is not connected (${c.status})`);
    }
    return c;
  }

  /** Runs a command; a failure marks the store unreachable and rejects. */
  private async run<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.ready().catch((err: Error) => {
      this.setUp(false, err.message);
      throw err;
    });
    try {
      const r = await fn(c);
      this.setUp(true);
      return r;
    } catch (err) {
      this.setUp(false, (err as Error).message);
      throw err;
    }
  }

  private setUp(up: boolean, why?: string): void {
    if (this.closed || up === this.up) {
      if (!up && !this.everUp && !this.warnedStart && !this.closed && this.log !== undefined) {
        this.warnedStart = true;
        this.log.warn({ ...this.describe, err: why }, 'ACME store (Redis) not reachable yet: nothing is ordered until it is; reconnecting with backoff');
      }
      return;
    }
    this.up = up;
    if (up) {
      const first = !this.everUp;
      this.everUp = true;
      this.log?.info(this.describe, first ? 'ACME store (Redis) connected' : 'ACME store (Redis) reachable again: certificates are shared and ordered again');
    } else {
      this.log?.warn({ ...this.describe, err: why }, 'ACME store (Redis) unreachable: the certificates already loaded stay served, nothing is ordered; reconnecting with backoff');
    }
    this.events?.reachable(up);
  }

  private warnedStart = false;

  // ---- account and certificates --------------------------------------------------------------

  async readAccountKey(): Promise<string | undefined> {
    const k = `${this.p}account`;
    const v = await this.run((c) => c.get(k));
    return v === null ? undefined : this.sealer.open(k, v);
  }

  /** SET NX: two instances creating an account at once keep the first key (both then use it). */
  async writeAccountKey(pem: string): Promise<string> {
    const k = `${this.p}account`;
    const set = await this.run((c) => c.set(k, this.sealer.seal(k, pem), 'NX'));
    if (set === 'OK') return pem;
    return (await this.readAccountKey()) ?? pem;
  }

  async readCertificate(domain: string): Promise<LoadedCertificate | undefined> {
    const k = `${this.p}cert:${domain}`;
    const v = await this.run((c) => c.get(k));
    if (v === null) return undefined;
    let pair: { cert: string; key: string };
    try {
      pair = JSON.parse(v) as { cert: string; key: string };
    } catch {
      return undefined;
    }
    // A wrong or missing encryption key is a configuration error, not "no certificate": it
    // rejects, and the manager does not order over it.
    const key = this.sealer.open(k, pair.key);
    try {
      return loadCertificate(pair.cert, key, [domain]);
    } catch {
      return undefined;
    }
  }

  async writeCertificate(domain: string, cert: string, key: string): Promise<void> {
    const k = `${this.p}cert:${domain}`;
    const value = JSON.stringify({ cert, key: this.sealer.seal(k, key) });
    await this.run((c) => c.set(k, value));
    await this.run((c) => c.incr(`${this.p}version`));
  }

  /** Puts a certificate back after Redis lost its data (a restart without persistence); keeps one written meanwhile. */
  async restoreCertificate(domain: string, cert: string, key: string): Promise<boolean> {
    const k = `${this.p}cert:${domain}`;
    const set = await this.run((c) => c.set(k, JSON.stringify({ cert, key: this.sealer.seal(k, key) }), 'NX'));
    return set === 'OK';
  }

  // ---- the lock ------------------------------------------------------------------------------

  async tryLock(): Promise<boolean> {
    const r = await this.run((c) => c.set(`${this.p}lock`, this.token, 'PX', REDIS_LOCK_TTL_MS, 'NX'));
    return r === 'OK';
  }

  async touchLock(): Promise<boolean> {
    try {
      return (await this.run((c) => c.usherAcmeRefresh(`${this.p}lock`, this.token, REDIS_LOCK_TTL_MS))) === 1;
    } catch {
      return false;
    }
  }

  async unlock(): Promise<void> {
    try {
      await this.run((c) => c.usherAcmeRelease(`${this.p}lock`, this.token));
    } catch {
      // unreachable: the lock expires by itself
    }
  }

  // ---- challenges ----------------------------------------------------------------------------

  async putChallenge(kind: 'http' | 'alpn', id: string, value: string | PemPair): Promise<void> {
    const field = `${kind}:${id}`;
    const key = `${this.p}challenges`;
    await this.run(async (c) => {
      await c.hset(key, field, JSON.stringify(value));
      await c.pexpire(key, CHALLENGE_TTL_MS);
    });
    // Every instance polling now answers it before the CA looks (bounded: an instance that
    // stopped polling a moment ago must not hold the order up for long).
    const deadline = Date.now() + CHALLENGE_WAIT_MS;
    for (;;) {
      const missing = await this.unacknowledged(field);
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        this.log?.warn({ ...this.describe, challenge: field, instances: missing }, 'ACME: some usher instances did not acknowledge the challenge in time; asking the CA to validate anyway');
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async unacknowledged(field: string): Promise<string[]> {
    const now = Date.now();
    const [alive, acks] = await this.run((c) => Promise.all([c.zrangebyscore(`${this.p}instances`, now - ALIVE_MS, '+inf'), c.smembers(`${this.p}ack:${field}`)]));
    const have = new Set(acks);
    return alive.filter((i) => i !== this.token && !have.has(i));
  }

  async deleteChallenge(kind: 'http' | 'alpn', id: string): Promise<void> {
    const field = `${kind}:${id}`;
    await this.run(async (c) => {
      await c.hdel(`${this.p}challenges`, field);
      await c.del(`${this.p}ack:${field}`);
    }).catch(() => undefined);
  }

  // ---- the poll ------------------------------------------------------------------------------

  private schedulePoll(delay: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.poll().finally(() => {
        this.polls++;
        this.schedulePoll(POLL_MS);
      });
    }, delay);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    const events = this.events;
    if (events === undefined) return;
    const now = Date.now();
    let version: string | null;
    let fields: Record<string, string>;
    try {
      [version, fields] = await this.run(async (c) => {
        const [, , v, f] = await Promise.all([
          c.zadd(`${this.p}instances`, now, this.token),
          c.zremrangebyscore(`${this.p}instances`, '-inf', now - 10 * ALIVE_MS),
          c.get(`${this.p}version`),
          c.hgetall(`${this.p}challenges`),
        ]);
        return [v, f] as const;
      });
    } catch {
      return; // logged by run() on the change to unreachable
    }
    if (version !== this.version) {
      const first = this.version === undefined;
      this.version = version;
      if (!first) events.certificatesChanged();
    }
    const http = new Map<string, string>();
    const alpn = new Map<string, PemPair>();
    for (const [field, json] of Object.entries(fields)) {
      try {
        const v = JSON.parse(json) as string | PemPair;
        if (field.startsWith('http:') && typeof v === 'string') http.set(field.slice(5), v);
        else if (field.startsWith('alpn:') && typeof v === 'object') alpn.set(field.slice(5), v);
      } catch {
        // not ours
      }
    }
    const fresh = Object.keys(fields).filter((f) => !this.acked.has(f));
    await events.challenges(http, alpn);
    if (!this.answering) return;
    if (fresh.length === 0) {
      this.acked = new Set(Object.keys(fields));
      return;
    }
    try {
      await this.run((c) => Promise.all(fresh.map((f) => c.sadd(`${this.p}ack:${f}`, this.token).then(() => c.pexpire(`${this.p}ack:${f}`, CHALLENGE_TTL_MS)))));
      this.acked = new Set(Object.keys(fields));
    } catch {
      // acknowledged on the next poll
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const c = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (c === undefined) return;
    c.removeAllListeners('close');
    if (c.status !== 'ready') {
      c.disconnect();
      return;
    }
    try {
      await c.zrem(`${this.p}instances`, this.token);
      await c.quit();
    } catch {
      c.disconnect();
    }
  }
}

function waitReady(c: Redis | Cluster, timeout: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      c.off('ready', done);
      resolve();
    };
    const t = setTimeout(done, timeout);
    c.once('ready', done);
  });
}

/** A URL for logs: without its password. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
