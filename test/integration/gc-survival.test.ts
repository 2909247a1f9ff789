// The serving process's young generation stays young under load (issue #10). With V8's
// allocation-site pretenuring on, the literal sites of in-flight requests got tenured under
// proxy load: every request then allocated some objects in old space, and they kept the
// request's young objects alive through the scavenges until a full GC — 65-70% of what a
// scavenge found survived (1% without), and GC pauses went from ~2 to 20-40 µs a request on a
// 10 KiB POST (bench/README.md, "Pretenuring"). `usher serve` turns it off
// (src/server/v8-tuning.ts). Checked here by counting, not timing: V8's own GC trace of the
// serving process over a steady load, survival = bytes a scavenge kept or promoted ÷ bytes
// allocated since the one before, after a warm-up long enough for Node 24's young generation to
// reach its size. Measured here: 0.4-1.5% (Node 24.21), 0.7-0.8% (Node 20.20). The negative
// control, USHER_TEST_PRETENURING=1 (node gets `--allocation-site-pretenuring`, which usher
// keeps as an explicit choice): 71-75% on both, or on Node 24 no scavenge at all but 8 full GCs
// (old space filled by pretenured objects): this test fails then.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Pool } from 'undici';
import { serve, tempDir, writeFile } from '../helpers/cli.js';
import { startUpstream } from '../helpers/upstream.js';

const WARMUP = 12_000;
const MEASURED = 12_000;
const BODY = Buffer.alloc(10 * 1024, 'x');

/** Sends `count` POSTs of 10 KiB over 10 connections; every answer must be a 200. */
async function load(pool: Pool, count: number): Promise<void> {
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < count) {
      sent++;
      const res = await pool.request({ method: 'POST', path: '/post', body: BODY });
      await res.body.dump({ limit: Infinity });
      assert.equal(res.statusCode, 200);
    }
  };
  await Promise.all(Array.from({ length: 10 }, worker));
}

function survival(lines: string[]): { survival: number; scavenges: number; full: number } {
  let allocated = 0;
  let kept = 0;
  let scavenges = 0;
  let full = 0;
  for (const line of lines) {
    if (!/ gc=/.test(line)) continue;
    if (!/ gc=s /.test(line)) {
      full++;
      continue;
    }
    const field = (name: string): number => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0);
    scavenges++;
    allocated += field('allocated');
    kept += field('promoted') + field('new_space_survived');
  }
  return { survival: allocated > 0 ? kept / allocated : 0, scavenges, full };
}

test('under a steady proxied POST load, scavenges keep little of what requests allocate (no pretenuring)', { timeout: 300_000 }, async (t) => {
  const origin = await startUpstream('origin', (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello, world\n'));
  });
  t.after(() => origin.close());
  const dir = tempDir(t);
  const config = writeFile(
    join(dir, 'usher.yaml'),
    `listeners: [{ address: "127.0.0.1:0" }]\nupstreams:\n  origin: { servers: [{ url: "${origin.url}" }] }\nroutes:\n  - upstream: origin\nlog: { level: warn, access_log: false }\n`,
  );
  const s = await serve(t, ['--config', config], ['--trace-gc-nvp', ...(process.env.USHER_TEST_PRETENURING ? ['--allocation-site-pretenuring'] : [])]);
  const pool = new Pool(s.url, { connections: 10, pipelining: 1 });
  t.after(() => pool.close());
  await load(pool, WARMUP);
  const from = s.cli.stdout.length;
  await load(pool, MEASURED);
  const lines = s.cli.stdout.slice(from).split('\n');
  const m = survival(lines);
  const what = `${m.scavenges} scavenges and ${m.full} full GCs over ${MEASURED} requests, survival ${(100 * m.survival).toFixed(1)}%`;
  // 12,000 requests allocate ~220 MB: 4 scavenges of Node 24's 64 MB young generation, 16 of Node 20's.
  assert.ok(m.scavenges >= 2, `${what}: the young generation is not what collects this load`);
  assert.ok(m.survival < 0.1, `${what}: scavenges keep what requests allocate (without pretenuring ~1%)`);
});
