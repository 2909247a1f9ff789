// How usher reaches a Redis, in one place: the connection part of the config (a URL, a Cluster's
// startup nodes, or raw ioredis options such as Sentinel's) and the client made from it. Every
// Redis-backed store takes this shape (the rate-limit stores under `rate_limits.stores`, the
// ACME storage under `acme.storage.redis`) and adds its own keys (prefix, timeout...).
//
// ioredis is loaded by the caller, on first use (loadIoredis): a config without Redis never pays
// for it, and `usher validate` never connects.
import { Type } from '@sinclair/typebox';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { isRec, type ErrorFn, type Rec } from '../config/check-kit.js';
import type { Segment } from '../config/issues.js';

export type IoRedis = { Redis: typeof Redis; Cluster: typeof Cluster };

/** The schema properties of a connection (spread into a store's object schema). */
export const redisConnectionProps = () => ({
  url: Type.Optional(Type.String({ minLength: 1, description: 'redis://[user:password@]host:port[/db] (or rediss:// for TLS). Default redis://127.0.0.1:6379.' })),
  cluster: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Redis Cluster: startup nodes as "host:port" (instead of `url`).' })),
  options: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      additionalProperties: false,
      description: 'ioredis options as they are (Sentinel: `sentinels` and `name`; password, tls, db...). With `cluster`: its `redisOptions`.',
    }),
  ),
});

/** A normalised connection. */
export interface RedisConnection {
  url?: string;
  cluster?: string[];
  options: Record<string, unknown>;
}

export function normalizeRedisConnection(r: { url?: string; cluster?: string[]; options?: Record<string, unknown> }): RedisConnection {
  const out: RedisConnection = { options: { ...(r.options ?? {}) } };
  if (r.url !== undefined) out.url = r.url;
  if (r.cluster !== undefined) out.cluster = [...r.cluster];
  return out;
}

/** The checks the schema cannot express. */
export function checkRedisConnection(r: unknown, at: Segment[], error: ErrorFn): void {
  if (!isRec(r)) return;
  const c = r as Rec;
  if (c.url !== undefined && c.cluster !== undefined) error(at, 'a Redis store takes "url" or "cluster", not both');
}

/** Reconnect backoff: 100 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
export function reconnectDelay(times: number): number {
  const base = Math.min(2000, 100 * 2 ** Math.min(times - 1, 5));
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

let ioredis: Promise<IoRedis> | undefined;
/** ioredis, imported the first time a store connects (about 0.5 s of startup). */
export function loadIoredis(): Promise<IoRedis> {
  return (ioredis ??= import('ioredis').then((m) => ({ Redis: m.Redis, Cluster: m.Cluster })));
}

/**
 * A client for `c`; `own` are the store's settings (timeouts, offline queue), which win over the
 * user's `options`. Reconnects with reconnectDelay. The caller attaches its 'error' listener at
 * once (an ioredis client without one crashes the process).
 */
export function createRedisClient({ Redis, Cluster }: IoRedis, c: RedisConnection, own: RedisOptions): Redis | Cluster {
  const mine: RedisOptions = { retryStrategy: reconnectDelay, ...own };
  if (c.cluster !== undefined) {
    const nodes = c.cluster.map((hp) => {
      const i = hp.lastIndexOf(':');
      return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
    });
    return new Cluster(nodes, { enableOfflineQueue: own.enableOfflineQueue ?? true, clusterRetryStrategy: reconnectDelay, redisOptions: { ...(c.options as RedisOptions), ...mine } });
  }
  return c.url === undefined ? new Redis({ ...(c.options as RedisOptions), ...mine }) : new Redis(c.url, { ...(c.options as RedisOptions), ...mine });
}
