import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher } from '../helpers/usher.js';

async function setup(t: { after: (fn: () => Promise<void>) => void }, route: Record<string, unknown>) {
  const stable = await startUpstream('stable');
  const canary = await startUpstream('canary');
  const upstreams = { stable: { servers: [stable.url] }, canary: { servers: [canary.url] } };
  const u = await startUsher({ upstreams, routes: [route] });
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(async () => {
    agent.destroy();
    await u.close();
    await stable.close();
    await canary.close();
  });
  const side = async (headers: Record<string, string> = {}) => (await request(`${u.url}/`, { headers, agent })).body;
  return { u, upstreams, side };
}

test('split without a sticky key: exact shares by weight, interleaved', async (t) => {
  const { side } = await setup(t, { split: [{ upstream: 'stable', weight: 9 }, { upstream: 'canary', weight: 1 }] });
  const seen: string[] = [];
  for (let i = 0; i < 100; i++) seen.push(await side());
  assert.equal(seen.filter((s) => s === 'canary').length, 10);
  for (let i = 0; i < 100; i += 10) assert.equal(seen.slice(i, i + 10).filter((s) => s === 'canary').length, 1, 'one canary request in every ten');
});

test('split with a sticky cookie: shares within tolerance over many clients, each client stays on its side, a reload moves only the keys it must', async (t) => {
  const route = { split: [{ upstream: 'stable', weight: 80 }, { upstream: 'canary', weight: 20 }], sticky_key: { cookie: 'uid' } };
  const { u, upstreams, side } = await setup(t, route);
  const clients = 1000;
  const first = new Map<string, string>();
  for (let i = 0; i < clients; i++) first.set(`user-${i}`, await side({ cookie: `theme=dark; uid=user-${i}` }));
  const canaryShare = [...first.values()].filter((s) => s === 'canary').length / clients;
  // FNV-1a + fmix32 over "user-N" keys: deterministic, so this cannot flake; ±4% is 3σ of a fair 20% coin.
  assert.ok(Math.abs(canaryShare - 0.2) < 0.04, `canary share ${canaryShare}`);

  for (let i = 0; i < clients; i += 37) assert.equal(await side({ cookie: `uid=user-${i}` }), first.get(`user-${i}`), `user-${i} keeps its side`);

  // Weights change on reload, without a restart: 50/50. Canary's range grows, so no canary user moves back.
  await u.usher.reload(config({ upstreams, routes: [{ ...route, split: [{ upstream: 'stable', weight: 50 }, { upstream: 'canary', weight: 50 }] }] }));
  let moved = 0;
  let canaryNow = 0;
  for (let i = 0; i < clients; i++) {
    const now = await side({ cookie: `uid=user-${i}` });
    if (now === 'canary') canaryNow++;
    if (first.get(`user-${i}`) === 'canary') assert.equal(now, 'canary', `user-${i} was on canary and must stay`);
    else if (now !== first.get(`user-${i}`)) moved++;
  }
  assert.ok(Math.abs(canaryNow / clients - 0.5) < 0.05, `canary share after reload ${canaryNow / clients}`);
  assert.ok(moved > 0, 'some stable users moved to canary');
});

test('split sticky on a header or the client IP; requests without the key are shared by weight', async (t) => {
  const { side } = await setup(t, { split: [{ upstream: 'stable', weight: 1 }, { upstream: 'canary', weight: 1 }], sticky_key: { header: 'x-user' } });
  const sides = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const a = await side({ 'x-user': `u${i}` });
    assert.equal(await side({ 'X-User': `u${i}` }), a);
    sides.add(a);
  }
  assert.deepEqual([...sides].sort(), ['canary', 'stable']);
  const keyless = [await side(), await side()];
  assert.deepEqual(keyless.sort(), ['canary', 'stable']);

  const ip = await setup(t, { split: [{ upstream: 'stable', weight: 1 }, { upstream: 'canary', weight: 1 }], sticky_key: 'client_ip' });
  const one = await ip.side();
  for (let i = 0; i < 5; i++) assert.equal(await ip.side(), one, 'one client IP, one side');
});
