// ACME state shared through Redis (issue #16 pt 4): two usher instances (separate processes,
// as on two machines; one of them with two workers) with one redis-server and one Pebble started here. Pebble validates
// HTTP-01 through a TCP forwarder standing for the L4 balancer in front of the fleet; it sends
// every validation connection to the instance that does NOT hold the order lock, so the order
// succeeds only if the challenge reached the other instance through Redis. Then: one order in
// all, both serve the same certificate (same serial over TLS); Redis killed -> both keep
// serving, the gauge says so; Redis restarted empty -> both reconnect and put the certificate
// back, and a third instance started then loads it instead of ordering.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { serve, tempDir, writeFile, type Serving } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { freePort, pebbleInstalled, startPebble } from '../helpers/pebble.js';
import { startRedis } from '../helpers/redis.js';
import { startUpstream } from '../helpers/upstream.js';

if (!pebbleInstalled()) throw new Error('pebble is not installed: `node scripts/system-deps.js` installs it or prints the command (npm test runs it first)');

const PREFIX = 'test:acme:';

function served(port: number, servername: string, ca: string): Promise<{ serial: string; san: string | undefined }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca }, () => {
      const c = s.getPeerCertificate();
      resolve({ serial: c.serialNumber, san: c.subjectaltname });
      s.destroy();
    });
    s.on('error', reject);
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Instance extends Serving {
  name: string;
  tlsPort: number;
  httpPort: number;
  admin: string;
}

test('two instances sharing ACME state in Redis: one order, the same certificate on both, Redis killed and restarted', { timeout: 170_000 }, async (t) => {
  const [pebble, redis, up] = await Promise.all([startPebble(), startRedis(), startUpstream('app')]);
  t.after(() => Promise.all([pebble.close(), redis.close(), up.close()]).then(() => undefined));
  const watch = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 100 });
  watch.on('error', () => undefined);
  await watch.connect();
  t.after(() => watch.disconnect());

  const instances: Instance[] = [];
  // The balancer in front of the fleet, as the CA sees it: to the instance that is not ordering.
  const sentTo: string[] = [];
  const forwarder: Server = createServer((client: Socket) => {
    client.pause();
    void watch.get(`${PREFIX}lock`).then(
      (lock) => {
        const holder = lock === null ? undefined : Number(lock.split(' ')[1]);
        const target = instances.find((i) => i.cli.child.pid !== holder) ?? instances[0]!;
        sentTo.push(`${target.name}${holder === undefined ? ' (no lock held)' : ''}`);
        const upstream = netConnect(target.httpPort, '127.0.0.1');
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((r) => forwarder.listen(pebble.httpPort, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => forwarder.close(() => r())));

  const dir = tempDir(t);
  const domain = 'shared.acme.test';
  const start = async (name: string, workers = 1): Promise<Instance> => {
    const [httpPort, tlsPort] = await Promise.all([freePort(), freePort()]);
    const file = writeFile(
      join(dir, `${name}.yaml`),
      `listeners:\n  - { address: 127.0.0.1:${httpPort} }\n  - { address: 127.0.0.1:${tlsPort}, tls: {} }\nadmin: { address: 127.0.0.1:0 }\n` +
        `upstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nroutes: [{ upstream: app }]\nlog: { level: info, access_log: false }\n` +
        `acme:\n  domains: [${domain}]\n  challenges: [http-01]\n  directory: ${JSON.stringify(pebble.directory)}\n  ca: ${JSON.stringify(pebble.caPath)}\n` +
        `  storage: { redis: { url: ${JSON.stringify(redis.url)}, prefix: ${JSON.stringify(PREFIX)}, encryption_key: "\${USHER_TEST_ACME_KEY}" } }\n` +
        `  retry: { min: 200ms, max: 2s }\n  check_interval: 1h\n`,
    );
    process.env.USHER_TEST_ACME_KEY = 'a test key of at least sixteen characters';
    const s = await serve(t, ['--config', file, '--workers', String(workers)]);
    const admin = await s.cli.until(() => /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.cli.stderr)?.[1], 'the admin banner line');
    return { ...s, name, httpPort, tlsPort, admin };
  };
  // Held by "another process" (the test) until both instances are up and following the store,
  // so that which of them orders is a race between the two, not between their start-ups.
  assert.equal(await watch.set(`${PREFIX}lock`, 'the-test 0 x', 'PX', 60_000, 'NX'), 'OK');
  // b runs two workers: its primary orders or loads, its workers answer and serve.
  const [a, b] = await Promise.all([start('a'), start('b', 2)]);
  instances.push(a, b);
  await until('both instances polling the store', async () => ((await watch.zcard(`${PREFIX}instances`)) === 2 ? true : undefined), 30_000);
  for (const i of [a, b]) await i.cli.until(() => i.cli.messages(/^ACME: another usher process holds the storage lock/).length > 0, `${i.name} seeing the lock held`, 30_000);
  await watch.del(`${PREFIX}lock`);

  const root = await pebble.root();
  const serving = (i: Instance) => served(i.tlsPort, domain, root).then((c) => (c.san === `DNS:${domain}` ? c.serial : undefined), () => undefined);
  const [serialA, serialB] = await Promise.all([until('a serving the certificate', () => serving(a), 90_000), until('b serving the certificate', () => serving(b), 90_000)]);
  const errors = [...a.cli.logs(), ...b.cli.logs()].filter((l) => Number(l.level) >= 50);
  const acmeLines = (i: Instance) => i.cli.messages(/ACME/).map((l) => `${i.name}${l.worker === undefined ? '' : `/${String(l.worker)}`} ${String(l.time)}: ${String(l.msg)}`);
  assert.deepEqual(errors, [], [...acmeLines(a), ...acmeLines(b), `validations sent to: ${sentTo.join(', ')}`].join('\n'));
  assert.equal(serialA, serialB, 'both instances serve the one certificate');
  const orders = [a, b].map((i) => i.cli.messages(/^ACME: ordering a certificate$/).length);
  assert.deepEqual(orders.toSorted(), [0, 1], 'one order between the two instances');
  const orderer = orders[0] === 1 ? a : b;
  const other = orderer === a ? b : a;
  // Pebble logs each order it creates ("Added order ... to the db"): one.
  assert.equal(pebble.output().match(/Added order/g)?.length, 1, pebble.output());
  // Every validation went to the instance that was not ordering: it answered from Redis.
  assert.ok(sentTo.length > 0);
  assert.deepEqual([...new Set(sentTo)], [other.name], JSON.stringify(sentTo));
  // Sealed at rest: the private key in Redis is not PEM.
  const stored = JSON.parse((await watch.get(`${PREFIX}cert:${domain}`))!) as { cert: string; key: string };
  assert.match(stored.cert, /BEGIN CERTIFICATE/);
  assert.doesNotMatch(stored.key, /PRIVATE KEY/);
  assert.doesNotMatch((await watch.get(`${PREFIX}account`))!, /PRIVATE KEY/);
  assert.equal(await watch.get(`${PREFIX}lock`), null, 'the lock is released');

  // One value per process serving (b: one per worker, labelled worker="N"), all the same.
  const gauge = async (i: Instance) => {
    const values = [...(await request(`${i.admin}/metrics`)).body.matchAll(/^usher_acme_store_up(?:\{[^}]*\})? (\d)$/gm)].map((m) => m[1]);
    return values.length === (i === b ? 2 : 1) && new Set(values).size === 1 ? values[0] : JSON.stringify(values);
  };
  assert.deepEqual(await Promise.all([gauge(a), gauge(b)]), ['1', '1']);

  // Redis dies: both keep serving what they loaded; each says so once, in the log and the gauge.
  await redis.kill();
  for (const i of [a, b]) await i.cli.until(() => i.cli.messages(/^ACME store \(Redis\) unreachable/).length > 0, `${i.name} noticing Redis is gone`, 30_000);
  await until('the gauges dropping to 0', async () => ((await gauge(a)) === '0' && (await gauge(b)) === '0' ? true : undefined), 10_000);
  assert.deepEqual(await Promise.all([serving(a), serving(b)]), [serialA, serialA]);

  // Back, empty (no persistence): both reconnect; the certificate and account are put back.
  await redis.restart();
  await until('the watching client reconnecting', () => (watch.status === 'ready' ? true : undefined), 30_000);
  for (const i of [a, b]) await i.cli.until(() => i.cli.messages(/^ACME store \(Redis\) reachable again/).length > 0, `${i.name} reconnecting`, 30_000);
  await until('the certificate put back into Redis', async () => ((await watch.get(`${PREFIX}cert:${domain}`)) === null ? undefined : true), 30_000);
  await until('the account key put back into Redis', async () => ((await watch.get(`${PREFIX}account`)) === null ? undefined : true), 30_000);
  await until('the gauges back at 1', async () => ((await gauge(a)) === '1' && (await gauge(b)) === '1' ? true : undefined), 10_000);
  assert.deepEqual(await Promise.all([serving(a), serving(b)]), [serialA, serialA]);

  // A third instance starting now loads the certificate from Redis: still one order at Pebble.
  const c = await start('c');
  instances.push(c);
  assert.equal(await until('c serving the certificate', () => serving(c), 30_000), serialA);
  assert.equal(c.cli.messages(/^ACME: ordering a certificate$/).length, 0);
  assert.equal(pebble.output().match(/Added order/g)?.length, 1);
  assert.deepEqual([a, b, c].map((i) => i.cli.logs().filter((l) => Number(l.level) >= 50)).flat(), []);
});
