// A real redis-server for a test: on a free port, no persistence, stopped after. Also a Sentinel
// setup (a master, a replica and Sentinels, Debian's redis-server in --sentinel mode) and a
// Cluster (three masters, slots assigned with redis-cli --cluster create), each in a temp dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  port: number;
  url: string;
  /** The running process (undefined while killed). */
  proc: ChildProcess | undefined;
  /** SIGKILL: gone at once, no goodbye to the clients. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was saved). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: connected but silent (a slow Redis). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function launch(port: number, extra: string[] = [], ready = 'Ready to accept connections', cwd?: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const args = extra[0]?.endsWith('.conf') ? [extra[0], '--port', String(port), ...extra.slice(1)] : ['--port', String(port), ...extra];
    const proc = spawn('redis-server', [...args, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let out = '';
    // Generous: a loaded machine starts processes slowly.
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${out}`));
    });
  });
}

function exited(proc: ChildProcess): Promise<void> {
  return proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', () => r()));
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const r: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc: await launch(port),
    async kill() {
      const p = r.proc;
      r.proc = undefined;
      if (p === undefined) return;
      p.kill('SIGKILL');
      await exited(p);
    },
    async restart() {
      await r.kill();
      r.proc = await launch(port);
    },
    pause: () => void r.proc?.kill('SIGSTOP'),
    resume: () => void r.proc?.kill('SIGCONT'),
    close: () => r.kill(),
  };
  return r;
}

/** One command through redis-cli (stdout, trimmed). */
export function redisCli(port: number, args: string[], password?: string): Promise<string> {
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** Polls `check` (a redis-cli query that may fail) every 100 ms until it holds. */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

interface Node {
  port: number;
  proc: ChildProcess | undefined;
}

async function stop(node: Node): Promise<void> {
  const p = node.proc;
  node.proc = undefined;
  if (p === undefined) return;
  p.kill('SIGKILL');
  await exited(p);
}

export interface TestSentinel {
  /** The master group name. */
  name: string;
  /** The master's and the replica's. */
  password: string;
  /** The Sentinels' own. */
  sentinelPassword: string;
  master: Node;
  replica: Node;
  sentinels: Node[];
  /** "127.0.0.1:port" of each Sentinel. */
  nodes: string[];
  /** The master's address as the Sentinels see it now. */
  masterPort(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A master and a replica (both with `requirepass`), and `count` Sentinels monitoring them (with
 * their own `requirepass`, quorum 1, a master down after `downAfterMs`), on free ports; it
 * returns when the replica is in sync and every Sentinel knows the replica and the other
 * Sentinels, so that a failover can happen.
 */
export async function startRedisSentinel(opts: { count?: number; downAfterMs?: number } = {}): Promise<TestSentinel> {
  const count = opts.count ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'usher-sentinel-'));
  const name = 'usher-test';
  const password = 'redis-test-password';
  const sentinelPassword = 'sentinel-test-password';
  const auth = ['--requirepass', password, '--masterauth', password];
  const started: Node[] = [];
  const node = async (args: string[], ready?: string): Promise<Node> => {
    const n: Node = { port: await freePort(), proc: undefined };
    started.push(n);
    n.proc = await launch(n.port, args, ready, dir);
    return n;
  };
  const close = async () => {
    for (const n of started) await stop(n);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const master = await node(auth);
    const replica = await node([...auth, '--replicaof', '127.0.0.1', String(master.port)]);
    await until('the replica in sync', 30_000, async () => /master_link_status:up/.test(await redisCli(replica.port, ['info', 'replication'], password)));
    const sentinels: Node[] = [];
    for (let i = 0; i < count; i++) {
      // A Sentinel rewrites its config file: one per Sentinel, in the temp dir.
      const file = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        file,
        [
          'sentinel resolve-hostnames no',
          `requirepass ${sentinelPassword}`,
          `sentinel sentinel-pass ${sentinelPassword}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
          `sentinel auth-pass ${name} ${password}`,
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await node([file, '--sentinel'], 'Sentinel ID is'));
    }
    for (const s of sentinels) {
      await until(`sentinel ${s.port} to know the replica and the other sentinels`, 60_000, async () => {
        const info = await redisCli(s.port, ['sentinel', 'master', name], sentinelPassword);
        const field = (k: string) => Number(new RegExp(`^${k}\\n(\\d+)$`, 'm').exec(info)?.[1] ?? -1);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= count - 1;
      });
    }
    const t: TestSentinel = {
      name,
      password,
      sentinelPassword,
      master,
      replica,
      sentinels,
      nodes: sentinels.map((s) => `127.0.0.1:${s.port}`),
      async masterPort() {
        for (const s of sentinels) {
          if (s.proc === undefined) continue;
          const out = await redisCli(s.port, ['sentinel', 'get-master-addr-by-name', name], sentinelPassword);
          return Number(out.split('\n')[1]);
        }
        throw new Error('no sentinel running');
      },
      close,
    };
    return t;
  } catch (err) {
    await close();
    throw err;
  }
}

export interface TestCluster {
  nodes: Node[];
  /** "127.0.0.1:port" of each node. */
  addresses: string[];
  /** Keys held by each node (DBSIZE), in node order. */
  sizes(): Promise<number[]>;
  close(): Promise<void>;
}

/** `count` masters (default 3) with cluster mode on, their slots assigned by redis-cli --cluster create; returns when every node says cluster_state:ok. */
export async function startRedisCluster(count = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-cluster-'));
  const nodes: Node[] = [];
  const close = async () => {
    for (const n of nodes) await stop(n);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const n: Node = { port: await freePort(), proc: undefined };
      nodes.push(n);
      // The bus port on a free port of its own (its default, port + 10000, may be taken).
      const bus = await freePort();
      n.proc = await launch(n.port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${n.port}.conf`), '--cluster-port', String(bus), '--cluster-node-timeout', '5000', '--dir', dir], undefined, dir);
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await redisCli(nodes[0]!.port, ['--cluster', 'create', ...addresses, '--cluster-yes']);
    for (const n of nodes) await until(`node ${n.port} cluster_state:ok`, 60_000, async () => /cluster_state:ok/.test(await redisCli(n.port, ['cluster', 'info'])));
    return {
      nodes,
      addresses,
      sizes: () => Promise.all(nodes.map(async (n) => Number(await redisCli(n.port, ['dbsize'])))),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
