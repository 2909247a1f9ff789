// How usher reaches a Redis, in one place: the connection part of the config (a URL, a Sentinel-
// managed master, a Cluster's startup nodes, credentials, raw ioredis options) and the client made from it. Every
// Redis-backed store takes this shape (the rate-limit stores under `rate_limits.stores`, the
// ACME storage under `acme.storage.redis`) and adds its own keys (prefix, timeout...).
//
// ioredis is loaded by the caller, on first use (loadIoredis): a config without Redis never pays
// for it, and `usher validate` never connects.
import { Type } from '@sinclair/typebox';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { isRec, list, type ErrorFn } from '../config/check-kit.js';
import type { Segment } from '../config/issues.js';
import { object } from '../config/schema-kit.js';

export type IoRedis = { Redis: typeof Redis; Cluster: typeof Cluster };

/** "host:port", "[v6]:port": a Sentinel or a Cluster node. The port's range is checked in checkRedisConnection. */
const HOST_PORT_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]/]+):[0-9]{1,5}$';
const hostPort = (description: string) => Type.String({ pattern: HOST_PORT_PATTERN, description, 'x-usher-expected': '"host:port" (an IPv6 address in brackets: "[::1]:26379")' });

const RedisSentinelSchema = object(
  {
    name: Type.String({ minLength: 1, description: 'The master group name the Sentinels monitor (`sentinel monitor NAME ...` in their config).' }),
    nodes: Type.Array(hostPort('A Sentinel.'), { minItems: 1, description: 'The Sentinels, as "host:port" (usher asks them for the current master, and again after a failover).' }),
    username: Type.Optional(Type.String({ minLength: 1, description: 'ACL user for the Sentinels themselves (ioredis `sentinelUsername`).' })),
    password: Type.Optional(Type.String({ minLength: 1, description: 'Password of the Sentinels themselves (their `requirepass`; ioredis `sentinelPassword`). The master\'s password is the store\'s `password`.' })),
  },
  { description: 'Redis Sentinel: the master is found through the Sentinels, and followed when they fail over to a replica.' },
);

/** The schema properties of a connection (spread into a store's object schema). */
export const redisConnectionProps = () => ({
  url: Type.Optional(Type.String({ minLength: 1, description: 'redis://[user:password@]host:port[/db] (or rediss:// for TLS). Default redis://127.0.0.1:6379.' })),
  sentinel: Type.Optional(RedisSentinelSchema),
  cluster: Type.Optional(Type.Array(hostPort('A cluster node.'), { minItems: 1, description: 'Redis Cluster: startup nodes as "host:port" (usher learns the others from them).' })),
  username: Type.Optional(Type.String({ minLength: 1, description: 'ACL user of the Redis servers (with `sentinel`: the master\'s; with `cluster`: every node\'s). With `url`, write it in the URL.' })),
  password: Type.Optional(Type.String({ minLength: 1, description: 'Password of the Redis servers (with `sentinel`: the master\'s and its replicas\'; with `cluster`: every node\'s). With `url`, write it in the URL. `${ENV}` references work here.' })),
  options: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      additionalProperties: false,
      description: 'More ioredis options as they are (tls, db, natMap, sentinelTLS...). With `cluster`: the options of each node (ioredis `redisOptions`).',
    }),
  ),
  cluster_options: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      additionalProperties: false,
      description: 'With `cluster`: ioredis Cluster options as they are (natMap, slotsRefreshTimeout...).',
    }),
  ),
});

export interface HostPort {
  host: string;
  port: number;
}

/** A normalised connection. */
export interface RedisConnection {
  url?: string;
  sentinel?: { name: string; nodes: HostPort[]; username?: string; password?: string };
  cluster?: HostPort[];
  username?: string;
  password?: string;
  options: Record<string, unknown>;
  cluster_options: Record<string, unknown>;
}

export interface RedisConnectionInput {
  url?: string;
  sentinel?: { name: string; nodes: string[]; username?: string; password?: string };
  cluster?: string[];
  username?: string;
  password?: string;
  options?: Record<string, unknown>;
  cluster_options?: Record<string, unknown>;
}

export function parseHostPort(hp: string): HostPort {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

export function normalizeRedisConnection(r: RedisConnectionInput): RedisConnection {
  const out: RedisConnection = { options: { ...(r.options ?? {}) }, cluster_options: { ...(r.cluster_options ?? {}) } };
  if (r.url !== undefined) out.url = r.url;
  if (r.cluster !== undefined) out.cluster = r.cluster.map(parseHostPort);
  if (r.sentinel !== undefined) {
    const sn = r.sentinel;
    out.sentinel = { name: sn.name, nodes: sn.nodes.map(parseHostPort) };
    if (sn.username !== undefined) out.sentinel.username = sn.username;
    if (sn.password !== undefined) out.sentinel.password = sn.password;
  }
  if (r.username !== undefined) out.username = r.username;
  if (r.password !== undefined) out.password = r.password;
  return out;
}

/** The checks the schema cannot express. */
export function checkRedisConnection(r: unknown, at: Segment[], error: ErrorFn): void {
  if (!isRec(r)) return;
  const modes = (['url', 'sentinel', 'cluster'] as const).filter((k) => r[k] !== undefined);
  if (modes.length > 1) error(at, `a Redis store takes one of "url", "sentinel" or "cluster", not ${modes.map((m) => `"${m}"`).join(' and ')}`);
  if (r.url !== undefined) {
    for (const k of ['username', 'password'] as const) if (r[k] !== undefined) error([...at, k], `with "url", the ${k} goes in the URL (redis://user:password@host:port)`, undefined, 'key');
  }
  if (r.cluster_options !== undefined && r.cluster === undefined) error([...at, 'cluster_options'], '"cluster_options" goes with "cluster"', undefined, 'key');
  const nodes: [Segment[], unknown][] = [
    ...list(r.cluster).map((n, i): [Segment[], unknown] => [[...at, 'cluster', i], n]),
    ...(isRec(r.sentinel) ? list(r.sentinel.nodes).map((n, i): [Segment[], unknown] => [[...at, 'sentinel', 'nodes', i], n]) : []),
  ];
  for (const [where, n] of nodes) {
    if (typeof n !== 'string') continue;
    const port = Number(n.slice(n.lastIndexOf(':') + 1));
    if (/:[0-9]{1,5}$/.test(n) && (port < 1 || port > 65535)) error(where, `port ${port} of ${JSON.stringify(n)} is out of range`, 'a port from 1 to 65535');
  }
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
  const auth: RedisOptions = {};
  if (c.username !== undefined) auth.username = c.username;
  if (c.password !== undefined) auth.password = c.password;
  const options: RedisOptions = { ...(c.options as RedisOptions), ...auth, retryStrategy: reconnectDelay, ...own };
  if (c.cluster !== undefined) {
    return new Cluster(c.cluster, {
      ...c.cluster_options,
      enableOfflineQueue: own.enableOfflineQueue ?? true,
      clusterRetryStrategy: reconnectDelay,
      redisOptions: options,
    });
  }
  if (c.sentinel !== undefined) {
    const sn = c.sentinel;
    const sentinel: RedisOptions = { sentinels: sn.nodes, name: sn.name, sentinelRetryStrategy: reconnectDelay, sentinelCommandTimeout: Math.max(1000, (own.commandTimeout ?? 100) * 10) };
    if (sn.username !== undefined) sentinel.sentinelUsername = sn.username;
    if (sn.password !== undefined) sentinel.sentinelPassword = sn.password;
    return new Redis({ ...options, ...sentinel });
  }
  return c.url === undefined ? new Redis(options) : new Redis(c.url, options);
}
