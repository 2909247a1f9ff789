// Child processes for the benchmark: spawn (optionally pinned to a core with taskset), track,
// and always clean up — on normal exit, on errors and on SIGINT/SIGTERM.
//
// Every child is spawned `detached`, so it leads its own process group: stopping the group
// also stops the workers a master forks (nginx), and Ctrl-C reaches only this orchestrator,
// which then stops everything itself.
import { spawn } from 'node:child_process';
import net from 'node:net';

const live = new Set();
const TAIL_BYTES = 64 * 1024;

/** Start `cmd args` in its own process group; `cpu` pins it with `taskset -c`. */
export function startProcess(cmd, args, { cpu, cwd, env, name = cmd } = {}) {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  const child = spawn(file, argv, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = { name, child, pid: child.pid, stdout: '', stderr: '', exited: false, code: null, signal: null };
  child.stdout.setEncoding('utf8').on('data', (s) => { handle.stdout = keepTail(handle.stdout + s); });
  child.stderr.setEncoding('utf8').on('data', (s) => { handle.stderr = keepTail(handle.stderr + s); });
  handle.done = new Promise((resolve) => {
    const finish = (code, signal, err) => {
      if (handle.exited) return;
      Object.assign(handle, { exited: true, code, signal, error: err });
      live.delete(handle);
      resolve(handle);
    };
    child.on('error', (err) => finish(null, null, err));
    // 'close' (not 'exit'): stdout/stderr are fully read by then.
    child.on('close', (code, signal) => finish(code, signal));
  });
  live.add(handle);
  return handle;
}

function keepTail(s) {
  return s.length > TAIL_BYTES ? s.slice(-TAIL_BYTES) : s;
}

/** Run to completion, killed after `timeoutMs` (every load run is bounded in time). */
export async function runProcess(cmd, args, { timeoutMs, ...opts }) {
  const handle = startProcess(cmd, args, opts);
  const timer = setTimeout(() => {
    handle.timedOut = true;
    killGroup(handle, 'SIGKILL');
  }, timeoutMs);
  await handle.done;
  clearTimeout(timer);
  return handle;
}

/** SIGTERM the group, then SIGKILL whatever is left after `graceMs`. */
export async function stopProcess(handle, graceMs = 3000) {
  if (!handle) return;
  if (!handle.exited) {
    killGroup(handle, 'SIGTERM');
    let timer;
    await Promise.race([handle.done, new Promise((r) => { timer = setTimeout(r, graceMs); })]);
    clearTimeout(timer);
  }
  // The leader may be gone while forked workers linger; the group id outlives it.
  killGroup(handle, 'SIGKILL');
  await handle.done;
}

function killGroup(handle, signal) {
  if (!handle.pid) return;
  try {
    process.kill(-handle.pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/** Synchronous last resort for 'exit' and signal handlers. */
export function killAllSync() {
  for (const handle of live) killGroup(handle, 'SIGKILL');
  live.clear();
}

/**
 * Call `cleanup` once however the run ends, and stop all children with it. Returns a function
 * that runs the cleanup now (for the normal path).
 */
export function installCleanup(cleanup) {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    killAllSync();
    cleanup();
  };
  process.on('exit', run);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping all benchmark processes`);
      run();
      process.exit(code);
    });
  }
  return run;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connect to `port` succeeds; rejects if `handle` exits first or on timeout. */
export async function waitForPort(port, { handle, timeoutMs = 15000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (handle?.exited) throw new Error(`exited (${exitDescription(handle)}) before listening`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`not listening on port ${port} after ${timeoutMs} ms`);
    await delay(50); // polling interval, not a synchronisation sleep
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const finish = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    socket.setTimeout(1000, () => finish(false));
  });
}

export function exitDescription(handle) {
  if (handle.error) return handle.error.message;
  if (handle.timedOut) return 'timed out';
  return handle.signal ? `signal ${handle.signal}` : `code ${handle.code}`;
}

/** Last non-empty lines of a process's stderr (or stdout), for one-line failure reports. */
export function outputTail(handle, lines = 3) {
  const text = (handle.stderr.trim() || handle.stdout.trim());
  return text.split('\n').filter((l) => l.trim()).slice(-lines).join(' / ');
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
