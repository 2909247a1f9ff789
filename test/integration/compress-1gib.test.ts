// 1 GiB of text through compression with usher's memory bounded: usher (its own process, so
// its peak RSS is its own) gzips a 1 GiB streamed response; the client decodes it with zlib's
// gunzip and counts. While the client does not read, the upstream is held back.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { startUpstream } from '../helpers/upstream.js';
import { rss } from '../helpers/proc.js';
import { waitFor } from '../helpers/usher.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GIB = 1024 * 1024 * 1024;
/** Growth allowed over usher's idle RSS; buffering the body would be ~1 GiB (or ~400 MiB compressed). */
const GROWTH_BOUND = 200 * 1024 * 1024;

/** 1 MiB of word salad: compresses about 3:1, so compressed buffers cannot hide a GiB. */
function textChunk(): Buffer {
  const words = ['usher', 'proxy', 'stream', 'gzip', 'bytes', 'route', 'upstream', 'client', 'header', 'body', 'the', 'of', 'and', 'a', 'to'];
  let x = 12345;
  let s = '';
  while (s.length < 1024 * 1024) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += words[x % words.length]! + ((x >> 8) % 11 === 0 ? '.\n' : ' ') + String.fromCharCode(97 + ((x >> 12) % 26));
  }
  return Buffer.from(s.slice(0, 1024 * 1024));
}
const CHUNK = textChunk();

async function spawnUsher(upstreamUrl: string): Promise<{ proc: ChildProcess; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-gz1gib-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(
    file,
    `listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    servers:\n      - url: ${upstreamUrl}\nroutes:\n  - upstream: app\n    compress: { algorithms: [gzip], gzip_level: 1 }\nlog: { level: warn }\n`,
  );
  const proc = spawn(process.execPath, [join(ROOT, 'bin/usher.js'), 'serve', '--config', file, '--workers', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(stderr) || proc.exitCode !== null, 10_000, 'usher to start');
  const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
  assert.ok(m, `usher did not start: ${stderr}`);
  return { proc, port: Number(m[1]) };
}

test('1 GiB gzipped through usher with bounded memory and real backpressure, decoded by zlib', async (t) => {
  let written = 0;
  const up = await startUpstream('big', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(GIB) });
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

  let stalledAt = 0;
  let compressed = 0;
  const decoded = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false, headers: { 'accept-encoding': 'gzip' } }, (res) => {
      if (res.headers['content-encoding'] !== 'gzip') return reject(new Error(`not gzipped: ${JSON.stringify(res.headers)}`));
      res.pause();
      // "Held back" = no upstream progress over five consecutive 100 ms samples.
      let last = -1;
      let still = 0;
      const settle = setInterval(() => {
        still = written === last && written > 0 ? still + 1 : 0;
        last = written;
        if (still < 5) return;
        clearInterval(settle);
        stalledAt = written;
        if (written >= 128 * 1024 * 1024) return reject(new Error(`the upstream was not held back while the client did not read (wrote ${written} bytes)`));
        let n = 0;
        let firstChecked = false;
        const gunzip = zlib.createGunzip();
        gunzip.on('data', (c: Buffer) => {
          if (!firstChecked && n + c.length >= 4096) {
            firstChecked = true;
            if (n === 0 && !c.subarray(0, 4096).equals(CHUNK.subarray(0, 4096))) reject(new Error('decoded bytes differ from the upstream\'s'));
          }
          n += c.length;
        });
        gunzip.on('end', () => resolve(n));
        gunzip.on('error', reject);
        res.on('data', (c: Buffer) => (compressed += c.length));
        res.pipe(gunzip);
      }, 100);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(decoded, GIB);
  const peak = rss(proc.pid!, 'VmHWM');
  t.diagnostic(
    `usher RSS idle ${Math.round(idle / 1048576)} MiB, peak ${Math.round(peak / 1048576)} MiB after 1 GiB gzipped to ${Math.round(compressed / 1048576)} MiB; upstream stalled at ${Math.round(stalledAt / 1048576)} MiB while the client paused`,
  );
  assert.ok(compressed < GIB / 2, `compressed to ${compressed} bytes`);
  assert.ok(peak - idle < GROWTH_BOUND, `usher's RSS grew by ${Math.round((peak - idle) / 1048576)} MiB (bound ${GROWTH_BOUND / 1048576} MiB)`);
});
