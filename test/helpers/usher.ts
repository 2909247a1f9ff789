import { PassThrough } from 'node:stream';
import { loadConfigObject } from '../../src/config/index.js';
import type { UsherConfig } from '../../src/config/types.js';
import { Usher, type UsherOptions } from '../../src/server/usher.js';
import { startUpstream, type TestUpstream } from './upstream.js';

export interface TestUsher {
  usher: Usher;
  config: UsherConfig;
  url: string;
  port: number;
  /** Parsed access-log lines so far (log.access_log must be on). */
  access: Record<string, unknown>[];
  /** Parsed process-log lines so far. */
  logs: Record<string, unknown>[];
  close(graceMs?: number): Promise<void>;
}

/** Loads a config object exactly as a file would be (schema, defaults, freeze). Throws on errors. */
export function config(obj: Record<string, unknown>): UsherConfig {
  const result = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], ...obj }, '<test>');
  if (!result.ok) throw new Error(`test config invalid:\n${JSON.stringify(result.errors, null, 2)}`);
  return result.config;
}

/** Starts usher in-process on 127.0.0.1:0 in front of whatever the config names; `filters`, `listenerFilters` and `probes` as in UsherOptions. */
export async function startUsher(obj: Record<string, unknown>, options: Pick<UsherOptions, 'probes' | 'filters' | 'listenerFilters'> = {}): Promise<TestUsher> {
  const cfg = config({ log: { level: 'warn', access_log: true }, ...obj });
  const access: Record<string, unknown>[] = [];
  const logs: Record<string, unknown>[] = [];
  const accessStream = lineCollector(access);
  const logStream = lineCollector(logs);
  const usher = new Usher(cfg, { ...options, accessLogDestination: accessStream, logDestination: logStream });
  await usher.start();
  const port = usher.addresses()[0]!.port;
  return {
    usher,
    config: cfg,
    url: `http://127.0.0.1:${port}`,
    port,
    access,
    logs,
    close: (graceMs = 1000) => usher.close(graceMs),
  };
}

function lineCollector(into: Record<string, unknown>[]): PassThrough {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) into.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return stream;
}

/** Polls `cond` on the event loop (no fixed sleeps) until it holds or `timeoutMs` passes. */
export async function waitFor(cond: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The common setup: one upstream (startUpstream's name and handler), usher in front of it with a
 * catch-all route plus `settings`, both closed after the test.
 */
export async function proxyTo(
  t: { after: (fn: () => Promise<void>) => void },
  name: string,
  handler?: Parameters<typeof startUpstream>[1],
  settings: Record<string, unknown> = {},
): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream(name, handler);
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], ...settings });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}
