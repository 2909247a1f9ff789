// rate_limits.connections_per_client with workers (issue #16): the count is asked of the primary
// (here a stand-in with its own count), and the worker's own count decides when it cannot answer.
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { ConnectionCounts, type SharedConnections } from '../../src/filters/rate-limit/connections.js';

/** A primary's count (or none: `gone`), with the calls it saw. */
class FakePrimary implements SharedConnections {
  gone = false;
  readonly open = new Map<string, number>();
  released = 0;
  acquire(ip: string, limit: number): Promise<boolean | null> {
    if (this.gone) return Promise.resolve(null);
    const n = this.open.get(ip) ?? 0;
    if (n >= limit) return Promise.resolve(false);
    this.open.set(ip, n + 1);
    return Promise.resolve(true);
  }
  release(ip: string): void {
    this.released++;
    this.open.set(ip, (this.open.get(ip) ?? 1) - 1);
  }
}

/** A server whose accepted sockets go through `counts`, and a way to open client connections. */
async function serverWith(t: { after(fn: () => Promise<void> | void): void }, counts: ConnectionCounts, limit: number): Promise<{ results: boolean[]; accepted: Socket[]; open: () => Promise<Socket> }> {
  const results: boolean[] = [];
  const accepted: Socket[] = [];
  const server: Server = createServer((s) => {
    s.on('error', () => undefined);
    void Promise.resolve(counts.admit(s, limit)).then((ok) => {
      results.push(ok);
      if (ok) accepted.push(s);
      else s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const clients: Socket[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const open = () =>
    new Promise<Socket>((resolve) => {
      const c = connect(port, '127.0.0.1', () => resolve(c));
      c.on('error', () => undefined);
      clients.push(c);
    });
  return { results, accepted, open };
}

async function until(f: () => boolean): Promise<void> {
  const start = Date.now();
  while (!f()) {
    if (Date.now() - start > 10_000) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("the primary's count decides, and a closed connection gives its place back to the primary", async (t) => {
  const primary = new FakePrimary();
  const counts = new ConnectionCounts(primary);
  const s = await serverWith(t, counts, 2);
  // Another worker holds one of the two already.
  primary.open.set('127.0.0.1', 1);
  await Promise.all([s.open(), s.open()]);
  await until(() => s.results.length === 2);
  assert.deepEqual([...s.results].sort(), [false, true]);
  assert.equal(counts.refused, 1);
  assert.equal(counts.count('127.0.0.1'), 1, 'the worker counts its own too (for when the primary is gone)');
  s.accepted[0]!.destroy();
  await until(() => primary.released === 1);
  assert.equal(primary.open.get('127.0.0.1'), 1);
  assert.equal(counts.count('127.0.0.1'), 0);
});

test("without the primary the worker's own count decides, and nothing is released to it", async (t) => {
  const primary = new FakePrimary();
  primary.gone = true;
  const counts = new ConnectionCounts(primary);
  const s = await serverWith(t, counts, 2);
  await Promise.all([s.open(), s.open(), s.open()]);
  await until(() => s.results.length === 3);
  assert.deepEqual([...s.results].sort(), [false, true, true]);
  for (const a of s.accepted) a.destroy();
  await until(() => counts.count('127.0.0.1') === 0);
  assert.equal(primary.released, 0);
});

test('a connection gone while the primary counted it is released at once', async (t) => {
  let answer: (ok: boolean | null) => void = () => undefined;
  let released = 0;
  const counts = new ConnectionCounts({ acquire: () => new Promise((r) => (answer = r)), release: () => void released++ });
  const results: boolean[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.destroy();
    void Promise.resolve(counts.admit(s, 5)).then((ok) => results.push(ok));
    answer(true);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const c = connect((server.address() as { port: number }).port, '127.0.0.1');
  c.on('error', () => undefined);
  await until(() => results.length === 1);
  c.destroy();
  assert.deepEqual(results, [false]);
  assert.equal(released, 1);
  assert.equal(counts.count('127.0.0.1'), 0);
});

test('a connection gone while the primary could not answer is not counted (its close is past: nothing would release it)', async (t) => {
  let answer: (ok: boolean | null) => void = () => undefined;
  const counts = new ConnectionCounts({ acquire: () => new Promise((r) => (answer = r)), release: () => undefined });
  const results: boolean[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.destroy();
    void Promise.resolve(counts.admit(s, 5)).then((ok) => results.push(ok));
    answer(null);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const c = connect((server.address() as { port: number }).port, '127.0.0.1');
  c.on('error', () => undefined);
  await until(() => results.length === 1);
  c.destroy();
  assert.deepEqual(results, [false]);
  assert.equal(counts.count('127.0.0.1'), 0);
});
