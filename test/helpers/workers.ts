// The workers tests' common parts: usher serve --workers 2 from a config text, GET /status, load
// loops that count failures, polling without fixed sleeps.
import assert from 'node:assert/strict';
import { Agent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import { serve, tempDir, writeFile, type Serving } from './cli.js';
import { request } from './client.js';
import { waitFor } from './usher.js';

export const LIMIT = { timeout: 170_000 };

export interface Worker {
  id: number;
  pid: number | null;
  state: string;
  restarts: number;
  requests: number | null;
  connections: number | null;
  config_hash: string | null;
}

export interface Status {
  config: { hash: string };
  requests: number;
  workers: Worker[];
}

/** `adminPort`: a reload names the admin listener's bound port to keep it (port 0 would open a new one). */
export function yaml(upstream: string, extra = '', adminPort = 0): string {
  return `listeners: [{ address: 127.0.0.1:0 }]\nadmin: { address: 127.0.0.1:${adminPort} }\nupstreams:\n  app:\n    servers: [${upstream}]\n${extra}`;
}

/** usher serve --workers 2 with this config; the admin URL from the banner; every worker serving. */
export async function start(t: { after(fn: () => Promise<void> | void): void }, text: string, workers = 2): Promise<Serving & { admin: string; file: string }> {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), text);
  const s = await serve(t, ['--config', file, '--workers', String(workers)]);
  const port = await s.cli.until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)?.[1], 'the admin banner line');
  const admin = `http://127.0.0.1:${port}`;
  const st = await status(admin);
  assert.equal(st.workers.length, workers);
  assert.ok(st.workers.every((w) => w.state === 'serving'), JSON.stringify(st.workers));
  return { ...s, admin, file };
}

export async function status(admin: string): Promise<Status> {
  return JSON.parse((await request(`${admin}/status`)).body) as Status;
}

export async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET with a bound: a request that hangs counts as failed (and is reported), it does not hang the test. */
export function get(url: string, agent: Agent | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('error', reject).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')));
    req.on('error', reject);
  });
}

/** `loops` clients sending requests one after another until stop(); counts ok and failed. */
export function load(url: string, loops: number, keepAlive: boolean): { ok: () => number; failures: string[]; bodies: Set<string>; stop: () => Promise<void> } {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const bodies = new Set<string>();
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: loops }) : undefined;
  const loop = async () => {
    while (running) {
      try {
        const r = await get(url, agent);
        if (r.status === 200) {
          ok++;
          bodies.add(r.body);
        } else failures.push(`${r.status} ${r.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const all = Promise.all(Array.from({ length: loops }, loop));
  return {
    ok: () => ok,
    failures,
    bodies,
    stop: async () => {
      running = false;
      await all;
      agent?.destroy();
    },
  };
}

/**
 * kill -9 of `victim` under load (four clients, a new connection per request), then waits for
 * its replacement to serve and for 40 more answers: the replacement and what failed meanwhile.
 */
export async function killUnderLoad(t: { after(fn: () => Promise<void> | void): void; diagnostic(m: string): void }, url: string, admin: string, victim: Pick<Worker, "id" | "pid">): Promise<{ replaced: Worker; failures: string[] }> {
  const l = load(url, 4, false);
  t.after(() => l.stop());
  await waitFor(() => l.ok() >= 20, 60_000, 'load before the kill');
  process.kill(victim.pid!, 'SIGKILL');
  const okAtKill = l.ok();
  const replaced = await until('the worker to be replaced', async () => {
    const w = (await status(admin)).workers.find((x) => x.id === victim.id)!;
    return w.state === 'serving' && w.pid !== victim.pid ? w : undefined;
  });
  await waitFor(() => l.ok() >= okAtKill + 40, 60_000, 'load after the replacement');
  await l.stop();
  t.diagnostic(`failures: ${JSON.stringify(l.failures)}`);
  return { replaced, failures: l.failures };
}
