// A real redis-server for a test: on a free port, no persistence, stopped after.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

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

function launch(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
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
