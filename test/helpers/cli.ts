import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs compiled from dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const binPath = join(repoRoot, 'bin', 'usher.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned `node bin/usher.js ...` with its output collected as it arrives. */
export class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  private readonly exited: Promise<Exit>;

  /** `nodeArgs`: flags for node itself, before bin/usher.js (e.g. `--import` a probe). */
  constructor(args: readonly string[], nodeArgs: readonly string[] = []) {
    // One process unless the test is about workers: `workers: auto` (the default of a file
    // config) would fork a process per core for every test that starts usher.
    if (args[0] === 'serve' && !args.includes('--workers') && !args.includes('--help') && !args.includes('-h')) args = [...args, '--workers', '1'];
    const env = { ...process.env };
    // node --test marks its children; usher is not a test file and must not report to the runner.
    delete env.NODE_TEST_CONTEXT;
    this.child = spawn(process.execPath, [...nodeArgs, binPath, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit'): by then every byte of stdout/stderr has been read.
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** stdout parsed as JSON lines (pino: process log and access log). Throws on a non-JSON line. */
  logs(): Record<string, unknown>[] {
    const complete = this.stdout.slice(0, this.stdout.lastIndexOf('\n') + 1);
    return complete
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`stdout line is not JSON: ${l}`);
        }
      });
  }

  /** Process-log lines whose msg matches `re`. */
  messages(re: RegExp): Record<string, unknown>[] {
    return this.logs().filter((l) => typeof l.msg === 'string' && re.test(l.msg));
  }

  /**
   * Polls `cond` until it holds; fails early (with the output so far) if the process exits first,
   * and after `timeoutMs` at the latest, so no test can hang on a child.
   */
  async until<T>(cond: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
    const start = Date.now();
    for (;;) {
      const v = cond();
      if (v !== undefined && v !== false) return v;
      if (this.exit !== undefined) throw new Error(`usher exited (${JSON.stringify(this.exit)}) before ${what}\n${this.output()}`);
      if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}\n${this.output()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Waits (bounded) for the process to exit on its own. */
  async waitForExit(timeoutMs = 30_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`usher did not exit within ${timeoutMs}ms\n${this.output()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit !== undefined) throw new Error(`cannot send ${sig}: usher already exited (${JSON.stringify(this.exit)})\n${this.output()}`);
    this.child.kill(sig);
  }

  /** For t.after: SIGKILL if still running, then wait for the exit. */
  async kill(): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGKILL');
    await this.waitForExit(5_000);
  }

  output(): string {
    return `--- stderr ---\n${this.stderr}--- stdout ---\n${this.stdout}`;
  }
}

/** Runs the CLI to completion (bounded) and returns its exit and output. */
export async function runCli(args: readonly string[], timeoutMs = 45_000): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = new Cli(args);
  try {
    const exit = await cli.waitForExit(timeoutMs);
    return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
  } finally {
    await cli.kill();
  }
}

export interface Serving {
  cli: Cli;
  port: number;
  url: string;
}

/** Spawns `usher serve ...args` and waits for the banner's first "listening on" line. */
export async function serve(t: { after(fn: () => Promise<void> | void): void }, args: readonly string[], nodeArgs: readonly string[] = []): Promise<Serving> {
  const cli = new Cli(['serve', ...args], nodeArgs);
  t.after(() => cli.kill());
  const port = await cli.until(() => {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr);
    return m ? Number(m[1]) : undefined;
  }, 'the "listening on" banner line', 60_000);
  return { cli, port, url: `http://127.0.0.1:${port}` };
}

/** A fresh temp dir, removed after the test. */
export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeFile(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}
