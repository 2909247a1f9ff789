// Rate limits, pure parts: the GCRA arithmetic with an injected clock, the local store's memory
// bound, the key functions and the config checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssues, loadConfigObject, loadConfigText } from '../../src/config/index.js';
import { gcra } from '../../src/filters/rate-limit/gcra.js';
import { compileKey } from '../../src/filters/rate-limit/key.js';
import { InflightCounts, LocalBuckets } from '../../src/filters/rate-limit/local-store.js';
import type { RequestContext } from '../../src/pipeline/types.js';

test('GCRA: a burst at once, then one request per interval; remaining and reset as the fields say', () => {
  let now = 1000;
  const b = new LocalBuckets(1000, () => now);
  // 10 per second (interval 100 ms), burst 5.
  const first = [1, 2, 3, 4, 5, 6].map(() => b.take('k', 100, 5));
  assert.deepEqual(first.map((d) => d.allowed), [true, true, true, true, true, false]);
  assert.deepEqual(first.slice(0, 5).map((d) => d.remaining), [4, 3, 2, 1, 0]);
  assert.equal(first[0]!.reset, 100, 'one request taken: full again in one interval');
  assert.equal(first[4]!.reset, 500);
  assert.equal(first[5]!.reset, 100, 'denied: one request passes in one interval');
  now += 99;
  assert.equal(b.take('k', 100, 5).allowed, false);
  now += 1;
  assert.equal(b.take('k', 100, 5).allowed, true, 'exactly one interval later');
  assert.equal(b.take('k', 100, 5).allowed, false);
  // Over 10 simulated seconds of a client sending every 10 ms: 5 + 10 per second pass.
  let passed = 0;
  for (let i = 0; i < 1000; i++) {
    now += 10;
    if (b.take('steady', 100, 5).allowed) passed++;
  }
  assert.ok(passed >= 104 && passed <= 105, `passed ${passed}`);
  // Keys are separate.
  assert.equal(b.take('other', 100, 5).allowed, true);
});

test('GCRA: a denied request takes nothing; rates that are not whole in binary stay exact', () => {
  const r0 = gcra(undefined, 0, 1000 / 3, 3);
  assert.equal(r0.decision.remaining, 2);
  let tat = r0.tat;
  for (let i = 0; i < 2; i++) tat = gcra(tat, 0, 1000 / 3, 3).tat;
  const denied = gcra(tat, 0, 1000 / 3, 3);
  assert.equal(denied.decision.allowed, false);
  assert.equal(denied.tat, undefined);
  assert.equal(gcra(tat, 1000 / 3, 1000 / 3, 3).decision.allowed, true);
});

test('the local store is bounded: idle keys expire, and past the bound the oldest go', () => {
  let now = 0;
  const b = new LocalBuckets(1000, () => now);
  for (let i = 0; i < 900; i++) b.take(`k${i}`, 100, 1);
  assert.equal(b.size, 900);
  now += 200; // every bucket is full again: the keys are idle
  b.take('fresh', 100, 1);
  for (let i = 0; i < 100; i++) b.take(`n${i}`, 100, 1);
  assert.ok(b.size <= 1000);
  b.sweep();
  assert.equal(b.size, 101, 'the idle keys went');
  // Never more than the bound, even when no key is idle.
  for (let i = 0; i < 50_000; i++) b.take(`busy${i}`, 1e9, 1);
  assert.ok(b.size <= 1000, `size ${b.size}`);
  // A key that was evicted starts with a full bucket: no false refusal, only a lost count.
});

test('in-flight counts: acquire up to the limit, release to zero deletes the key', () => {
  const c = new InflightCounts();
  assert.equal(c.tryAcquire('a', 2), true);
  assert.equal(c.tryAcquire('a', 2), true);
  assert.equal(c.tryAcquire('a', 2), false);
  c.release('a');
  assert.equal(c.tryAcquire('a', 2), true);
  c.release('a');
  c.release('a');
  assert.equal(c.size, 0);
  c.release('a');
  assert.equal(c.size, 0);
});

test('keys: one part, several parts joined (so a+b never equals ab+"")', () => {
  const ctx = {
    clientIp: '10.0.0.1',
    header: (n: string) => ({ 'x-user': 'u1' })[n],
    route: { name: 'api' },
    request: { cookie: (n: string) => (n === 'sid' ? 's9' : undefined) },
  } as unknown as RequestContext;
  assert.equal(compileKey([{ kind: 'client_ip' }])(ctx), '10.0.0.1');
  assert.equal(compileKey([{ kind: 'header', name: 'x-user' }, { kind: 'route' }, { kind: 'cookie', name: 'sid' }])(ctx), 'u1\0api\0s9');
  assert.equal(compileKey([{ kind: 'header', name: 'x-missing' }, { kind: 'client_ip' }])(ctx), '\u000010.0.0.1');
});

const base = { listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['http://127.0.0.1:1'] } } };

function errors(obj: Record<string, unknown>): string[] {
  const r = loadConfigObject({ ...base, ...obj }, '<test>');
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

test('rate_limits config: defaults, units, lower-cased header names', () => {
  const r = loadConfigObject(
    {
      ...base,
      rate_limits: {
        policies: { api: { rate: 100, per: '1m', burst: 20, key: ['client_ip', { header: 'X-Api-Key' }] }, slots: { concurrency: 3 } },
        stores: { shared: { redis: { url: 'redis://127.0.0.1:6379' } } },
        global: ['slots'],
        connections_per_client: 50,
      },
      routes: [{ upstream: 'app', rate_limits: ['api'] }],
    },
    '<test>',
  );
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  const rl = r.config.rate_limits!;
  assert.deepEqual(rl.policies.api!.rate, { interval: 600, burst: 20, rate: 100, per: 60000 });
  assert.deepEqual(rl.policies.api!.key, [{ kind: 'client_ip' }, { kind: 'header', name: 'x-api-key' }]);
  assert.equal(rl.policies.slots!.rate, undefined);
  assert.equal(rl.stores.shared!.timeout, 50);
  assert.deepEqual(rl.global, ['slots']);
  assert.equal(rl.connections_per_client, 50);
  assert.deepEqual(r.config.routes[0]!.rate_limits, ['api']);
  // Without the section: empty, and the routes get no filter.
  const none = loadConfigObject(base, '<test>');
  assert.ok(none.ok);
  assert.equal(none.config.rate_limits, undefined);
});

test('rate_limits config errors: unknown names, a global policy keyed after routing, options that do not apply', () => {
  assert.deepEqual(
    errors({
      rate_limits: {
        policies: {
          a: { rate: 1, key: [{ cookie: 'sid' }] },
          b: { per: '1s' },
          c: { rate: 5, store: 'nowhere' },
          d: { rate: 5, fallback: { rate: 1 } },
          e: { concurrency: 2, store: 'shared' },
        },
        stores: { shared: { redis: { url: 'redis://x', cluster: ['a:1'] } } },
        global: ['a', 'zz'],
      },
      routes: [{ upstream: 'app', rate_limits: ['nope'] }],
    }),
    [
      'rate_limits.policies.b: a policy needs "rate" or "concurrency" (or both)',
      'rate_limits.policies.b.per: "per" goes with "rate"',
      'rate_limits.policies.c.store: no rate limit store named "nowhere"',
      'rate_limits.policies.d.fallback: "fallback" applies to a policy with a Redis store',
      'rate_limits.policies.e.store: a shared store holds rates: this policy has only "concurrency", which is counted per process',
      'rate_limits.stores.shared.redis: a Redis store takes one of "url", "sentinel" or "cluster", not "url" and "cluster"',
      'rate_limits.global[0]: policy "a" keys on cookie, which is known only after routing; a global policy keys on client_ip or a header',
      'rate_limits.global[1]: no rate limit policy named "zz"',
      'routes[0].rate_limits[0]: no rate limit policy named "nope"',
    ],
  );
});

test('the README "Rate limits" examples are valid', async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Rate limits'), readme.indexOf('## Authentication'));
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.equal(blocks.length, 2);
  const load = (yaml: string) => {
    const routes = yaml.includes('\nroutes:') ? '' : 'routes: [{ upstream: api }]\n';
    const r = loadConfigText(`listeners: [{ address: 0 }]\nupstreams: { api: { servers: [http://127.0.0.1:1] } }\n${routes}${yaml}`, 'README.md', { SENTINEL_PASSWORD: 's', REDIS_PASSWORD: 'r' });
    assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
    return r.config;
  };
  const first = load(blocks[0]!);
  assert.deepEqual(first.routes[0]!.rate_limits, ['per_key', 'uploads']);
  assert.equal(first.rate_limits!.policies.per_key!.fallback!.interval, 3000);
  // The Sentinel and Cluster example, indented inside its list item.
  const second = load(blocks[1]!.replace(/^ {2}/gm, ''));
  assert.deepEqual(second.rate_limits!.stores.ha!.sentinel, { name: 'mymaster', nodes: [{ host: '10.0.0.11', port: 26379 }, { host: '10.0.0.12', port: 26379 }, { host: '10.0.0.13', port: 26379 }], password: 's' });
  assert.equal(second.rate_limits!.stores.ha!.password, 'r');
  assert.equal(second.rate_limits!.stores.sharded!.cluster!.length, 3);
});

test('Redis stores: Sentinel (nodes, master name, passwords) and Cluster (startup nodes) normalised for ioredis', () => {
  const r = loadConfigObject(
    {
      ...base,
      rate_limits: {
        policies: { a: { rate: 10, store: 'ha' }, b: { rate: 10, store: 'sharded' } },
        stores: {
          ha: { redis: { sentinel: { name: 'mymaster', nodes: ['10.0.0.1:26379', '[::1]:26380'], password: 'sp' }, password: 'mp', username: 'u', timeout: '100ms' } },
          sharded: { redis: { cluster: ['r1.example:7000', '10.0.0.2:7001'], password: 'cp', cluster_options: { slotsRefreshTimeout: 2000 } } },
        },
      },
      routes: [{ upstream: 'app', rate_limits: ['a', 'b'] }],
    },
    '<test>',
  );
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  const { ha, sharded } = r.config.rate_limits!.stores;
  assert.deepEqual(ha!.sentinel, { name: 'mymaster', nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], password: 'sp' });
  assert.equal(ha!.password, 'mp');
  assert.equal(ha!.username, 'u');
  assert.equal(ha!.timeout, 100);
  assert.deepEqual(sharded!.cluster, [{ host: 'r1.example', port: 7000 }, { host: '10.0.0.2', port: 7001 }]);
  assert.equal(sharded!.password, 'cp');
  assert.deepEqual(sharded!.cluster_options, { slotsRefreshTimeout: 2000 });
});

test('Redis store config errors name the file, line and what was expected', () => {
  const yaml = `listeners: [{ address: "127.0.0.1:0" }]
upstreams: { app: { servers: [http://127.0.0.1:1] } }
rate_limits:
  policies: { a: { rate: 10, store: ha } }
  stores:
    ha:
      redis:
        sentinel:
          nodes: [ "10.0.0.1", "10.0.0.2:99999" ]
    both:
      redis:
        url: redis://127.0.0.1:6379
        sentinel: { name: m, nodes: [ "10.0.0.1:26379" ] }
        password: secret
    sharded:
      redis:
        cluster: [ "10.0.0.1:7000", "no port" ]
    loose:
      redis:
        cluster_options: { slotsRefreshTimeout: 1 }
routes: [{ upstream: app, rate_limits: [a] }]
`;
  const r = loadConfigText(yaml, 'usher.yaml', {});
  assert.equal(r.ok, false);
  const text = r.ok ? '' : formatIssues(r.errors);
  const lines = text.split('\n').filter((l) => l.startsWith('usher.yaml:'));
  const at = (line: number, what: RegExp) => assert.ok(lines.some((l) => l.startsWith(`usher.yaml:${line}:`) && what.test(l)), `line ${line} ${what}:\n${text}`);
  at(9, /sentinel: missing required key "name"/);
  at(9, /"host:port"/); // "10.0.0.1": no port
  at(9, /port 99999 of "10.0.0.2:99999" is out of range/);
  at(12, /one of "url", "sentinel" or "cluster", not "url" and "sentinel"/);
  at(14, /with "url", the password goes in the URL/);
  at(17, /"host:port"/);
  at(20, /"cluster_options" goes with "cluster"/);
});
