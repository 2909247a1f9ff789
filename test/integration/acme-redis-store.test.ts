// The Redis ACME store's parts against a real redis-server: the order lock (one holder; only
// the holder refreshes or releases it; it expires by itself), the account key kept first-come,
// certificates read back through the seal; and the failure policy of a manager whose Redis does
// not answer: it never orders, and says why.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisAcmeStore } from '../../src/tls/acme/redis-store.js';
import { certDir } from '../helpers/certs.js';
import { freePort } from '../helpers/pebble.js';
import { startRedis } from '../helpers/redis.js';
import { startUsher, waitFor } from '../helpers/usher.js';

const store = (url: string, key?: string) => new RedisAcmeStore({ url, options: {}, cluster_options: {}, prefix: 'unit:acme:', timeout: 1000, ...(key === undefined ? {} : { encryption_key: key }) });

test('the Redis order lock: one holder; a stranger can neither refresh nor release it; it expires by itself', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = store(redis.url);
  const b = store(redis.url);
  t.after(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  assert.equal(await a.tryLock(), true);
  assert.equal(await b.tryLock(), false, 'a second instance must wait');
  assert.equal(await b.touchLock(), false, "refreshing another's lock fails");
  await b.unlock();
  assert.equal(await b.tryLock(), false, "releasing another's lock leaves it");
  assert.equal(await a.touchLock(), true);
  await a.unlock();
  assert.equal(await b.tryLock(), true);
  // A holder that died: its lock has a time to live (set short here), then another takes it.
  const watch = new Redis(redis.url);
  t.after(() => watch.disconnect());
  const ttl = await watch.pttl('unit:acme:lock');
  assert.ok(ttl > 50_000 && ttl <= 60_000, `lock TTL ${ttl} ms`);
  await watch.pexpire('unit:acme:lock', 1);
  for (let i = 0; (await watch.exists('unit:acme:lock')) === 1; i++) {
    assert.ok(i < 500, 'the lock expires');
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(await a.tryLock(), true);
  assert.equal(await b.touchLock(), false, 'the old holder learns it lost the lock');
  await a.unlock();
});

test('the account key: the first written is kept; certificates round-trip through the seal; the wrong key is an error, not "none"', async (t) => {
  const redis = await startRedis();
  const certs = certDir();
  t.after(async () => {
    await redis.close();
    certs.remove();
  });
  const a = store(redis.url, 'the fleet key, sixteen+ chars');
  const b = store(redis.url, 'the fleet key, sixteen+ chars');
  const other = store(redis.url, 'another key, sixteen+ chars');
  t.after(() => Promise.all([a.close(), b.close(), other.close()]).then(() => undefined));
  assert.equal(await a.readAccountKey(), undefined);
  assert.equal(await a.writeAccountKey('KEY-A'), 'KEY-A');
  assert.equal(await b.writeAccountKey('KEY-B'), 'KEY-A', 'two instances creating an account at once use the first key');
  assert.equal(await b.readAccountKey(), 'KEY-A');
  const site = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  assert.equal(await a.readCertificate('site.test'), undefined);
  await a.writeCertificate('site.test', site.cert, site.key);
  const read = await b.readCertificate('site.test');
  assert.equal(read?.names[0], 'site.test');
  assert.equal(read?.key, site.key);
  await assert.rejects(Promise.resolve(other.readCertificate('site.test')), /encryption_key differs/);
  assert.equal(await a.restoreCertificate('site.test', 'x', 'y'), false, 'restoring never overwrites a stored certificate');
});

test('Redis unreachable from the start: no order is ever attempted, the reason is logged, the gauge is 0', async (t) => {
  const dead = await freePort();
  const u = await startUsher({
    log: { level: 'info' },
    listeners: [{ address: '127.0.0.1:0', tls: {} }],
    admin: { address: '127.0.0.1:0' },
    routes: [{ respond: { body: 'x' } }],
    acme: { domains: ['never.test'], directory: `http://127.0.0.1:${dead}/dir`, storage: { redis: { url: `redis://127.0.0.1:${dead}`, timeout: '200ms' } }, retry: { min: '50ms', max: '100ms' } },
  });
  t.after(() => u.close());
  const acme = u.usher.acme!;
  await waitFor(() => u.logs.filter((l) => l.msg === 'ACME: the storage cannot be read or locked; not ordering').length >= 3, 15_000, 'three checks refused');
  assert.equal(acme.orders, 0);
  assert.equal(acme.storeUp, 0);
  assert.equal(u.logs.filter((l) => String(l.msg).startsWith('ACME store (Redis) not reachable yet')).length, 1, 'one line for the mode, not one per attempt');
  assert.equal(u.logs.filter((l) => String(l.msg).startsWith('ACME: could not obtain')).length, 0);
});
