// 1 GiB through usher both ways with its memory bounded, and backpressure shown directly: while
// the client does not read, the upstream is held back instead of usher buffering the body.
// usher runs as its own process so that its peak RSS (VmHWM) is its own.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startUpstream } from '../helpers/upstream.js';
import { rss } from '../helpers/proc.js';
import { waitFor } from '../helpers/usher.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GIB = 1024 * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 'x');
/**
 * Growth allowed over usher's RSS at start; buffering a GiB would be ~1100 MiB. Growth, not a
 * total: usher starts at ~60–100 MiB on Node 20 and ~150 on Node 24 (whose V8 sizes its heap to
 * the machine), where a 256 MiB total (peaks of 245–262 seen) failed without anything buffered.
 */
const GROWTH_BOUND = 200 * 1024 * 1024;

async function spawnUsher(upstreamUrl: string): Promise<{ proc: ChildProcess; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-1gib-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, `listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    servers:\n      - url: ${upstreamUrl}\nroutes:\n  - upstream: app\nlog: { level: warn }\n`);
  const proc = spawn(process.execPath, [join(ROOT, 'bin/usher.js'), 'serve', '--config', file, '--workers', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(stderr) || proc.exitCode !== null, 10_000, 'usher to start');
  const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
  assert.ok(m, `usher did not start: ${stderr}`);
  return { proc, port: Number(m[1]) };
}

test('1 GiB download and upload through usher, with bounded memory and real backpressure', async (t) => {
  let written = 0;
  let uploaded = 0;
  const up = await startUpstream('big', (req, res) => {
    if (req.method === 'POST') {
      req.on('data', (c: Buffer) => (uploaded += c.length));
      req.on('end', () => res.end(String(uploaded)));
      return;
    }
    req.resume();
    res.writeHead(200, { 'content-length': String(GIB) });
    const pump = () => {
      while (written < GIB) {
        written += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const { proc, port } = await spawnUsher(up.url);
  t.after(async () => {
    proc.kill('SIGKILL');
    await up.close();
  });
  const idle = rss(proc.pid!, 'VmRSS');

  // Download: stall the client first, and watch the upstream get held back.
  let stalledAt = 0;
  const received = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let n = 0;
      res.pause();
      // Let the pipes fill: the upstream keeps writing until every buffer on the way is full.
      // "Held back" = no progress over five consecutive 100 ms samples (not a CPU hiccup).
      let last = -1;
      let still = 0;
      const settle = setInterval(() => {
        still = written === last && written > 0 ? still + 1 : 0;
        last = written;
        if (still < 5) return;
        clearInterval(settle);
        stalledAt = written;
        if (written >= 128 * 1024 * 1024) {
          reject(new Error(`the upstream was not held back while the client did not read (wrote ${written} bytes)`));
          return;
        }
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.resume();
      }, 100);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(received, GIB);

  // Upload: 1 GiB streamed from the client, counted by the upstream.
  const answer = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', method: 'POST', agent: false, headers: { 'content-length': String(GIB) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < GIB) {
        sent += CHUNK.length;
        if (!req.write(CHUNK)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(answer, String(GIB));
  const peak = rss(proc.pid!, 'VmHWM');
  t.diagnostic(`usher RSS at start ${Math.round(idle / 1048576)} MiB, peak ${Math.round(peak / 1048576)} MiB after 2 GiB streamed; upstream write stalled at ${Math.round(stalledAt / 1048576)} MiB while the client paused`);
  assert.ok(peak - idle < GROWTH_BOUND, `usher's RSS grew by ${Math.round((peak - idle) / 1048576)} MiB (bound ${GROWTH_BOUND / 1048576} MiB)`);
});
