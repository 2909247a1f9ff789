// Requests collapsed onto a fill stream its body as it grows (src/cache/growing.ts), in the
// memory store and in the disk store: with a large body the origin holds back, every collapsed
// client has its head and its first bytes before the origin sends the rest, all get the whole
// body, and the origin sees one request; a client that stops reading holds up nobody; a fill
// the origin cuts short cuts every collapsed client's response short of its Content-Length
// (never a whole-looking body), and the next request goes upstream.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const SIZE = 3 * 1024 * 1024;
const HEAD_BYTES = 1000;

function bodyOf(size: number, n: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + n * 13) & 0xff;
  return b;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Setup {
  u: TestUsher;
  counts: Map<string, number>;
  routes: Map<string, Handler>;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, type: 'memory' | 'disk'): Promise<Setup> {
  const counts = new Map<string, number>();
  const routes = new Map<string, Handler>();
  const up: TestUpstream = await startUpstream('origin', (req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    req.resume();
    routes.get(path)!(req, res, n);
  });
  const dir = await mkdtemp(join(tmpdir(), 'usher-collapse-'));
  const store = type === 'disk' ? { type: 'disk', path: dir, max_size: '32mb', max_object_size: '8mb' } : { max_size: '32mb', max_object_size: '8mb' };
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, caches: { c: store }, routes: [{ upstream: 'app', cache: { store: 'c', collapse_timeout: '60s' } }] });
  await u.usher.runtime.caches.get('c')!.start();
  t.after(async () => {
    await u.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { u, counts, routes };
}

/** A client reading a response: `head` once its head and first bytes came, `whole` at its end (rejects if the response was cut). */
function client(u: TestUsher, path: string): { head: Promise<IncomingMessage>; whole: Promise<Buffer>; res: () => IncomingMessage | undefined } {
  let res: IncomingMessage | undefined;
  let whole!: Promise<Buffer>;
  const head = new Promise<IncomingMessage>((resolveHead, rejectHead) => {
    whole = new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(`${u.url}${path}`, { agent: false, headers: { host: 'collapse.test' } }, (r) => {
        res = r;
        const chunks: Buffer[] = [];
        r.once('data', () => resolveHead(r));
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('error', reject);
        r.on('end', () => (r.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('incomplete'))));
      });
      req.on('error', (err) => {
        rejectHead(err);
        reject(err);
      });
      req.end();
    });
  });
  head.catch(() => {});
  whole.catch(() => {});
  return { head, whole, res: () => res };
}

/** The origin sends its head and HEAD_BYTES of a SIZE body when `head` is called, then the rest when released or cut (n > 1: all at once). */
function heldBack(s: Setup, path: string): { head: () => void; release: () => void; cut: () => void } {
  let head!: () => void;
  const headed = new Promise<void>((r) => (head = r));
  let release!: () => void;
  let cut!: () => void;
  const released = new Promise<'release' | 'cut'>((r) => {
    release = () => r('release');
    cut = () => r('cut');
  });
  s.routes.set(path, (_req, res, n) => {
    const body = bodyOf(SIZE, n);
    const send = () => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE), 'cache-control': 'max-age=600' });
    if (n > 1) return void send().end(body);
    void headed.then(() => {
      send().write(body.subarray(0, HEAD_BYTES));
      void released.then((how) => (how === 'release' ? res.end(body.subarray(HEAD_BYTES)) : res.destroy()));
    });
  });
  return { head, release, cut };
}

/** Requests waiting on the fill of `path` before its response came. */
const waiting = (s: Setup, path: string) => s.u.usher.runtime.caches.get('c')!.fill(`http://collapse.test${path}`)?.waiters.length ?? 0;

for (const type of ['memory', 'disk'] as const) {
  test(`${type} store: collapsed clients stream a large fill as it grows; all get it whole; one upstream request; a paused client holds up nobody`, async (t) => {
    const s = await setup(t, type);
    const gate = heldBack(s, '/big');
    const leader = client(s.u, '/big');
    await waitFor(() => s.counts.get('/big') === 1, 5000, 'the fill upstream');
    // Waiting on the fill before its head came, and arriving after it: both kinds follow it.
    const readers = Array.from({ length: 4 }, () => client(s.u, '/big'));
    await waitFor(() => waiting(s, '/big') === 4, 5000, 'four requests waiting on the fill');
    gate.head();
    await leader.head;
    readers.push(...Array.from({ length: 4 }, () => client(s.u, '/big')));
    // Every collapsed client has its head and first bytes while the origin still holds the rest back.
    for (const r of readers) {
      const res = await r.head;
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(SIZE));
      assert.match(String(res.headers['cache-status']), /^usher; hit; .*collapsed/);
    }
    // One stops reading: the others (and the leader) still get everything.
    readers[0]!.res()!.pause();
    gate.release();
    const want = sha(bodyOf(SIZE, 1));
    assert.equal(sha(await leader.whole), want, 'the leader');
    for (const r of readers.slice(1)) assert.equal(sha(await r.whole), want);
    readers[0]!.res()!.resume();
    assert.equal(sha(await readers[0]!.whole), want, 'the paused client, once it reads again');
    assert.equal(s.counts.get('/big'), 1, 'the origin saw one request');
    // Stored: a hit now.
    const after = client(s.u, '/big');
    assert.match(String((await after.head).headers['cache-status']), /^usher; hit; ttl=/);
    assert.equal(sha(await after.whole), want);
    assert.equal(s.counts.get('/big'), 1);
  });

  test(`${type} store: a fill the origin cuts short cuts the collapsed clients' responses too; the next request goes upstream`, async (t) => {
    const s = await setup(t, type);
    const gate = heldBack(s, '/cut');
    gate.head();
    const leader = client(s.u, '/cut');
    await leader.head;
    const readers = Array.from({ length: 4 }, () => client(s.u, '/cut'));
    for (const r of readers) assert.match(String((await r.head).headers['cache-status']), /collapsed/);
    gate.cut();
    await assert.rejects(leader.whole, 'the leader\'s response is cut');
    for (const r of readers) await assert.rejects(r.whole, 'a collapsed response is cut, never passed off as whole');
    // Nothing was stored: the next request fills again, and gets the whole body.
    const again = client(s.u, '/cut');
    assert.match(String((await again.head).headers['cache-status']), /fwd=uri-miss/);
    assert.equal(sha(await again.whole), sha(bodyOf(SIZE, 2)));
    await waitFor(() => s.counts.get('/cut') === 2, 5000, 'the second fill');
  });
}
