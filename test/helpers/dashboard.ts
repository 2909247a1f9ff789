// The dashboard tests' common parts: usher in front of two upstreams with active checks (and a
// route to a dead one, for errors), its admin listener behind a token; a traffic loop.
import { adminUrl } from './admin.js';
import { request } from './client.js';
import { startUpstream } from './upstream.js';
import { startUsher } from './usher.js';

export const TOKEN = 'dashboard-test-token-0123456789';

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const up = await startUpstream('gone');
  await up.close();
  return up.port;
}

export async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const a = await startUpstream('a', (req, res) => {
    req.resume();
    setTimeout(() => res.end('a'), 2);
  });
  const b = await startUpstream('b', (req, res) => {
    req.resume();
    setTimeout(() => res.end('b'), 8);
  });
  const dead = await deadPort();
  const spec = {
    admin: { address: '127.0.0.1:0', token: TOKEN },
    upstreams: {
      app: { servers: [a.url, b.url], health_check: { path: '/', interval: '200ms', fall: 1, rise: 1 } },
      broken: { servers: [`http://127.0.0.1:${dead}`] },
    },
    routes: [
      { name: 'api', match: { path: '/api' }, upstream: 'app' },
      { name: 'broken', match: { path: '/broken' }, upstream: 'broken' },
      { name: 'web', upstream: 'app' },
    ],
  };
  const u = await startUsher(spec);
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });
  return { a, b, u, admin: adminUrl(u), spec };
}

/** Requests in a loop (about 50/s) until stopped. */
export function traffic(url: string): { stop: () => Promise<void>; sent: () => number } {
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      await request(`${url}/api/items`).catch(() => undefined);
      await request(`${url}/page`).catch(() => undefined);
      sent += 2;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    sent: () => sent,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

