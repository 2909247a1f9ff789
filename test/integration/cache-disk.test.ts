// The disk store (src/cache/disk.ts) over real sockets, with an origin that counts its requests:
// stored and served across an usher restart (index rebuilt from the files), a truncated or
// corrupted file removed and the request sent upstream, a 304's field update kept in the file (fresh after a restart), eviction keeping the directory under
// its bound, readers while a response is being written (collapsed onto the fill, and a reader
// of an old version while a new one replaces it), and objects over max_object_size uncached.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm, truncate, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DiskStore } from '../../src/cache/disk.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

class Origin {
  readonly counts = new Map<string, number>();
  readonly routes = new Map<string, Handler>();
  up!: TestUpstream;
  async start(): Promise<void> {
    this.up = await startUpstream('origin', (req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      const n = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, n);
      req.resume();
      const h = this.routes.get(path);
      if (h !== undefined) return h(req, res, n);
      // Default: a body of the size in the path (/size/N), cacheable.
      const m = /^\/size\/(\d+)/.exec(path);
      const body = m === null ? `${path} #${n}` : bodyOf(Number(m[1]), n);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'max-age=600' });
      res.end(body);
    });
  }
  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }
}

/** A body of `size` bytes that differs per fill `n`. */
function bodyOf(size: number, n: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + n * 13) & 0xff;
  return b;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Setup {
  o: Origin;
  dir: string;
  settings: Record<string, unknown>;
  u: TestUsher;
  store: DiskStore;
  restart(): Promise<void>;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, store: Record<string, unknown> = {}): Promise<Setup> {
  const o = new Origin();
  await o.start();
  const dir = await mkdtemp(join(tmpdir(), 'usher-cache-'));
  const settings = { upstreams: { app: { servers: [o.up.url] } }, caches: { disk: { type: 'disk', path: dir, max_size: '16mb', max_object_size: '8mb', ...store } }, routes: [{ upstream: 'app', cache: 'disk' }] };
  const s = { o, dir, settings } as unknown as Setup;
  const open = async () => {
    s.u = await startUsher(settings);
    s.store = s.u.usher.runtime.caches.get('disk') as DiskStore;
    await s.store.start();
  };
  await open();
  s.restart = async () => {
    await s.u.close();
    await open();
  };
  t.after(async () => {
    await s.u.close();
    await o.up.close();
    await rm(dir, { recursive: true, force: true });
  });
  return s;
}

/** GET with the body as bytes; the Host is fixed (the key has it), whatever port usher got. */
function get(u: TestUsher, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${u.url}${path}`, { headers: { host: 'cache.test', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const shard of await readdir(dir)) {
    if (shard === 'tmp') continue;
    for (const f of await readdir(join(dir, shard))) out.push(join(dir, shard, f));
  }
  return out;
}

const stored = (s: Setup, n: number) => waitFor(() => s.store.stats.stores >= n, 5000, `${n} responses stored`);

test('disk store: stored in files, served after an usher restart (small and large bodies)', async (t) => {
  const s = await setup(t);
  // 2 MiB is past VERIFY_FIRST: streamed from the file and checked as it streams.
  for (const path of ['/size/1000', '/size/2097152']) {
    const first = await get(s.u, path);
    assert.equal(first.status, 200);
    assert.match(String(first.headers['cache-status']), /fwd=uri-miss; stored/);
  }
  await stored(s, 2);
  assert.equal((await files(s.dir)).length, 2);
  assert.deepEqual(await readdir(join(s.dir, 'tmp', String(process.pid))), [], 'no temp file left');
  const hit = await get(s.u, '/size/2097152');
  assert.match(String(hit.headers['cache-status']), /^usher; hit/);
  assert.equal(sha(hit.body), sha(bodyOf(2097152, 1)));

  await s.restart();
  assert.equal(s.store.keys, 2, 'the index was rebuilt from the files');
  for (const [path, size] of [['/size/1000', 1000], ['/size/2097152', 2097152]] as const) {
    const r = await get(s.u, path);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['cache-status']), /^usher; hit/, path);
    assert.equal(Number(r.headers['content-length']), size);
    assert.ok(Number(r.headers.age) >= 0);
    assert.equal(sha(r.body), sha(bodyOf(size, 1)), path);
    assert.equal(s.o.count(path), 1, `${path}: the origin was asked once, before the restart`);
  }
  // HEAD and a Range from the file.
  const head = await request(`${s.u.url}/size/2097152`, { method: 'HEAD', headers: { host: 'cache.test' } });
  assert.equal(head.headers['content-length'], '2097152');
  const range = await get(s.u, '/size/2097152', { range: 'bytes=1048570-1048579' });
  assert.equal(range.status, 206);
  assert.deepEqual(range.body, bodyOf(2097152, 1).subarray(1048570, 1048580));
  assert.equal(s.o.count('/size/2097152'), 1);
});

test('disk store: a 304 updates the stored fields in the file too; after a restart the entry is fresh with them', async (t) => {
  const s = await setup(t);
  const sizes = new Map([['/rev/small', 1000], ['/rev/big', 2097152]]);
  for (const [path, size] of sizes) {
    s.o.routes.set(path, (req, res, n) => {
      if (n > 1 && req.headers['if-none-match'] === '"r1"') {
        res.writeHead(304, { etag: '"r1"', 'cache-control': 'max-age=600', 'x-version': String(n) });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), etag: '"r1"', 'cache-control': 'max-age=0', 'x-version': String(n) });
      res.end(bodyOf(size, n));
    });
  }
  for (const path of sizes.keys()) await get(s.u, path);
  await stored(s, 2);
  for (const [path, size] of sizes) {
    const r = await get(s.u, path);
    assert.match(String(r.headers['cache-status']), /fwd=stale; fwd-status=304/, path);
    assert.equal(r.headers['x-version'], '2', path);
    assert.equal(sha(r.body), sha(bodyOf(size, 1)), `${path}: the stored body`);
  }
  await waitFor(() => s.store.diskStats.rewrites >= 2, 5000, 'both files rewritten');
  assert.equal(s.store.diskStats.writeErrors, 0);
  assert.equal((await files(s.dir)).length, 2, 'the old files are gone');
  assert.deepEqual(await readdir(join(s.dir, 'tmp', String(process.pid))), [], 'no temp file left');
  const before = await get(s.u, '/rev/small');
  assert.match(String(before.headers['cache-status']), /^usher; hit/, 'fresh by the 304 (before the restart)');

  await s.restart();
  assert.equal(s.store.diskStats.loaded, 2);
  for (const [path, size] of sizes) {
    const r = await get(s.u, path);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['cache-status']), /^usher; hit; ttl=5\d\d/, `${path}: fresh after the restart, by the 304's max-age`);
    assert.equal(r.headers['x-version'], '2', `${path}: the 304's field`);
    assert.equal(r.headers.etag, '"r1"');
    assert.equal(Number(r.headers['content-length']), size);
    assert.equal(sha(r.body), sha(bodyOf(size, 1)), path);
    assert.equal(s.o.count(path), 2, `${path}: no request after the 304`);
  }
});

test('disk store: a truncated or corrupted file is never served, is removed, and the request goes upstream', async (t) => {
  const s = await setup(t);
  for (const p of ['/size/500', '/size/600', '/size/700', '/size/2000000']) await get(s.u, p);
  await stored(s, 4);
  const byPath = new Map<string, string>();
  for (const [key, v] of s.store.entries()) byPath.set(new URL(key).pathname, join(s.dir, v.list[0]!.file!.path));

  // While running: one truncated (its length says so before the head), one with a flipped body byte (its digest).
  await truncate(byPath.get('/size/500')!, 100);
  const flipped = await readFile(byPath.get('/size/600')!);
  flipped[10] = flipped[10]! ^ 0xff;
  await writeFile(byPath.get('/size/600')!, flipped);
  for (const p of ['/size/500', '/size/600']) {
    const r = await get(s.u, p);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['cache-status']), /fwd=uri-miss/, `${p} went upstream`);
    assert.equal(s.o.count(p), 2, p);
    assert.equal(r.body.length, Number(/\d+/.exec(p)![0]));
  }
  assert.ok(s.store.diskStats.corrupt >= 2);

  // A large body with a flipped byte: the head went out before the digest could be checked, so
  // the client's response is cut short of its Content-Length (never whole with wrong bytes),
  // the file is removed, and the next request goes upstream.
  const big = byPath.get('/size/2000000')!;
  const bytes = await readFile(big);
  bytes[1500000] = bytes[1500000]! ^ 0xff;
  await writeFile(big, bytes);
  await assert.rejects(get(s.u, '/size/2000000'), /aborted|ECONNRESET|socket hang up|premature/i);
  await waitFor(() => !byPathExists(s, '/size/2000000'), 5000, 'the corrupt entry leaves the index');
  const again = await get(s.u, '/size/2000000');
  assert.match(String(again.headers['cache-status']), /fwd=uri-miss/);
  assert.equal(s.o.count('/size/2000000'), 2);

  // Across a restart: a file truncated (or garbage) while usher was down is removed at start.
  await stored(s, 7);
  await s.u.close();
  const now = new Map<string, string>();
  for (const [key, v] of s.store.entries()) now.set(new URL(key).pathname, join(s.dir, v.list[0]!.file!.path));
  await truncate(now.get('/size/700')!, 650);
  await writeFile(join(s.dir, now.get('/size/500')!.split('/').slice(-2, -1)[0]!, 'garbage'), 'not a cache file');
  await s.restart();
  const left = await files(s.dir);
  assert.ok(!left.includes(now.get('/size/700')!), 'the truncated file is gone');
  assert.ok(!left.some((f) => f.endsWith('garbage')), 'a file that is no entry is gone');
  const r700 = await get(s.u, '/size/700');
  assert.match(String(r700.headers['cache-status']), /fwd=uri-miss/);
  assert.equal(s.o.count('/size/700'), 2);
  const r600 = await get(s.u, '/size/600');
  assert.match(String(r600.headers['cache-status']), /^usher; hit/, 'the whole ones stay');
});

function byPathExists(s: Setup, path: string): boolean {
  for (const [key] of s.store.entries()) if (new URL(key).pathname === path) return true;
  return false;
}

test('disk store: eviction keeps the directory under max_size, least recently used first', async (t) => {
  const s = await setup(t, { max_size: '100kb' });
  for (let i = 0; i < 20; i++) {
    await get(s.u, `/size/${10000 + i}`);
    await stored(s, i + 1);
    // Keep the first one in use: it is never the least recently used.
    await get(s.u, '/size/10000');
  }
  await waitFor(() => s.store.bytes <= 100 * 1024, 5000, 'index within bounds');
  // Removals are asynchronous unlinks: poll the directory until they are through.
  let onDisk = 0;
  for (let tries = 0; tries < 200; tries++) {
    onDisk = await s.store.bytesOnDisk();
    if (onDisk <= 100 * 1024) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(onDisk <= 100 * 1024, `${onDisk} bytes on disk`);
  assert.ok(s.store.stats.evictions >= 10);
  assert.equal((await files(s.dir)).length, s.store.keys, 'one file per indexed response');
  assert.match(String((await get(s.u, '/size/10000')).headers['cache-status']), /^usher; hit/, 'the one in use stayed');
  assert.match(String((await get(s.u, '/size/10001')).headers['cache-status']), /fwd=uri-miss/, 'an old one was evicted');
});

test('disk store: readers while a response is being written get it whole, one upstream request; a reader of an old version keeps it', async (t) => {
  const s = await setup(t);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const size = 3 * 1024 * 1024;
  s.o.routes.set('/slow', (_req, res, n) => {
    const body = bodyOf(size, n);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), 'cache-control': 'max-age=600' });
    res.write(body.subarray(0, 1000));
    void released.then(() => res.end(body.subarray(1000)));
  });
  // The first byte reaches the client before the last is sent.
  const firstByte = new Promise<{ res: IncomingMessage; chunks: Buffer[] }>((resolve, reject) => {
    const req = httpRequest(`${s.u.url}/slow`, { agent: false, headers: { host: 'cache.test' } }, (res) => {
      const chunks: Buffer[] = [];
      res.once('data', () => resolve({ res, chunks }));
      res.on('data', (c: Buffer) => chunks.push(c));
    });
    req.on('error', reject);
    req.end();
  });
  const leader = await firstByte;
  const readers = Array.from({ length: 20 }, () => get(s.u, '/slow'));
  await waitFor(() => s.o.count('/slow') >= 1, 5000);
  release();
  const done = new Promise<Buffer>((resolve) => leader.res.on('end', () => resolve(Buffer.concat(leader.chunks))));
  assert.equal(sha(await done), sha(bodyOf(size, 1)));
  for (const r of await Promise.all(readers)) {
    assert.equal(r.status, 200);
    assert.equal(sha(r.body), sha(bodyOf(size, 1)));
  }
  assert.equal(s.o.count('/slow'), 1, 'the readers followed the fill: one upstream request');

  // A slow reader of version 1 while version 2 replaces it: it still gets version 1 whole.
  s.o.routes.set('/slow', (_req, res, n) => {
    const body = bodyOf(size, n);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), 'cache-control': 'max-age=600' });
    res.end(body);
  });
  const slow = await new Promise<{ res: IncomingMessage; chunks: Buffer[] }>((resolve, reject) => {
    const req = httpRequest(`${s.u.url}/slow`, { agent: false, headers: { host: 'cache.test' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('data', () => {
        res.pause();
        resolve({ res, chunks });
      });
    });
    req.on('error', reject);
    req.end();
  });
  assert.match(String(slow.res.headers['cache-status']), /^usher; hit/);
  const before = s.store.stats.stores;
  const fresh = await get(s.u, '/slow', { 'cache-control': 'no-cache' });
  assert.equal(sha(fresh.body), sha(bodyOf(size, 2)));
  await waitFor(() => s.store.stats.stores > before, 5000, 'version 2 stored');
  for (let tries = 0; tries < 200 && (await files(s.dir)).length > 1; tries++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await files(s.dir)).length, 1, 'version 1 is off the disk (its reader holds it open)');
  const whole = new Promise<Buffer>((resolve) => slow.res.on('end', () => resolve(Buffer.concat(slow.chunks))));
  slow.res.resume();
  assert.equal(sha(await whole), sha(bodyOf(size, 1)), 'the old reader got version 1 whole');
  assert.equal(sha((await get(s.u, '/slow')).body), sha(bodyOf(size, 2)));
});

test('disk store: a response over max_object_size passes uncached, its partial file removed', async (t) => {
  const s = await setup(t, { max_object_size: '100kb' });
  // By Content-Length, and without one (chunked) once the body passes the bound.
  s.o.routes.set('/chunked', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=600' });
    res.write(bodyOf(80000, n));
    res.end(bodyOf(80000, n + 1));
  });
  for (const p of ['/size/200000', '/chunked']) {
    const a = await get(s.u, p);
    assert.equal(a.status, 200);
    const b = await get(s.u, p);
    assert.equal(b.body.length, p === '/chunked' ? 160000 : 200000);
    assert.equal(s.o.count(p), 2, `${p} was not stored`);
  }
  for (let tries = 0; tries < 200 && (await readdir(join(s.dir, 'tmp', String(process.pid)))).length > 0; tries++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await readdir(join(s.dir, 'tmp', String(process.pid))), [], 'the partial copies are gone');
  assert.deepEqual(await files(s.dir), []);
});

test('disk store shared by workers: a store that starts clears its own and dead processes\' temp files, never a live writer\'s', async (t) => {
  const s = await setup(t);
  const { DiskStore: Store } = await import('../../src/cache/disk.js');
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const size = 2 * 1024 * 1024;
  s.o.routes.set('/held', (_req, res, n) => {
    const body = bodyOf(size, n);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), 'cache-control': 'max-age=600' });
    res.write(body.subarray(0, 1000));
    void released.then(() => res.end(body.subarray(1000)));
  });
  // Leftovers: a process that is gone (a worker that crashed) and a loose file (the old layout).
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(s.dir, 'tmp', dead), { recursive: true });
  await writeFile(join(s.dir, 'tmp', dead, 'partial'), 'x');
  await writeFile(join(s.dir, 'tmp', 'loose'), 'x');
  // This usher is writing /held to its temp file when another worker's store starts on the directory.
  const filling = get(s.u, '/held');
  await waitFor(() => s.o.count('/held') === 1, 5000, 'the fill upstream');
  const other = new Store('disk', s.dir, 16 * 1024 * 1024, 8 * 1024 * 1024, 'other-worker');
  await other.start();
  assert.deepEqual((await readdir(join(s.dir, 'tmp'))).sort(), ['other-worker', String(process.pid)].sort(), 'the dead process\'s and the loose temp files are gone, the live writer\'s kept');
  release();
  assert.equal(sha((await filling).body), sha(bodyOf(size, 1)));
  await stored(s, 1);
  assert.equal(s.store.diskStats.writeErrors, 0, 'the live writer\'s file was not taken from under it');
  const hit = await get(s.u, '/held');
  assert.match(String(hit.headers['cache-status']), /^usher; hit/);
  assert.equal(sha(hit.body), sha(bodyOf(size, 1)));
  // The other worker's index is its own (read at its start): it finds what it can of the directory now after a restart.
  const again = new Store('disk', s.dir, 16 * 1024 * 1024, 8 * 1024 * 1024, 'other-worker');
  await again.start();
  assert.equal(again.keys, 1, 'the entry the first worker wrote');
  assert.equal(again.diskStats.corrupt, 0);
});

test('disk store config: path required, one directory per store, path only for disk', async () => {
  const { loadConfigObject } = await import('../../src/config/index.js');
  const base = { listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['http://127.0.0.1:1'] } }, routes: [{ upstream: 'app' }] };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ a: { type: 'disk' } }, /a disk store needs "path"/],
    [{ a: { type: 'disk', path: '/tmp/x' }, b: { type: 'disk', path: '/tmp/x' } }, /already the store "a"'s/],
    [{ a: { type: 'memory', path: '/tmp/x' } }, /only a disk store has a path/],
    [{ a: { type: 'disk', store: 'memory', path: '/tmp/x' } }, /older spelling of "type"/],
  ];
  for (const [caches, message] of cases) {
    const r = loadConfigObject({ ...base, caches }, '<test>');
    assert.equal(r.ok, false, JSON.stringify(caches));
    if (!r.ok) assert.match(r.errors.map((e) => e.message).join('\n'), message);
  }
  const ok = loadConfigObject({ ...base, caches: { a: { type: 'disk', path: '/tmp/x' }, b: { store: 'memory' } } }, '<test>');
  assert.equal(ok.ok, true);
});

test('disk store: a client that leaves mid-body leaves no file open', async (t) => {
  const s = await setup(t);
  await get(s.u, '/size/4000000');
  await stored(s, 1);
  const openFiles = async () => {
    let n = 0;
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(join('/proc/self/fd', fd)).catch(() => '');
      if (target.startsWith(s.dir)) n++;
    }
    return n;
  };
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${s.u.url}/size/4000000`, { agent: false, headers: { host: 'cache.test' } }, (res) => {
        assert.match(String(res.headers['cache-status']), /^usher; hit/);
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.on('close', resolve);
      req.end();
    });
  }
  for (let tries = 0; tries < 300 && (await openFiles()) > 0; tries++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await openFiles(), 0, 'every cache file usher opened is closed');
});
