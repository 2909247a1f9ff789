import assert from 'node:assert/strict';
import { createServer, Agent, type Server } from 'node:http';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

/** A fresh server on a port that was used before (the "restarted" upstream). */
function listenOn(port: number, name: string, served: { n: number }): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    if (req.url !== '/healthz') served.n++;
    res.end(name);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('chaos: under steady load, kill one of three upstreams and restart it — no client sees a failure', async (t) => {
  const ups: TestUpstream[] = [];
  for (const n of ['a', 'b', 'c']) ups.push(await startUpstream(n));
  const [, , c] = ups as [TestUpstream, TestUpstream, TestUpstream];
  const u = await startUsher({
    upstreams: {
      app: {
        servers: ups.map((up) => up.url),
        health_check: { path: '/healthz', interval: '50ms', timeout: '200ms', rise: 2, fall: 2 },
        // An ejection that outlasts the active checks' verdict (fall: 2 at 50ms) even on a loaded machine:
        // with 300ms, a delayed check let the ejection end first, and c went down twice.
        outlier_detection: { consecutive_connect_failures: 2, consecutive_5xx: 3, base_ejection_time: '2s' },
        retry: { backoff: { base: '1ms', max: '10ms' } },
      },
    },
    routes: [{ upstream: 'app' }],
    log: { level: 'info', access_log: true },
  });
  const restarted: { server?: Server } = {};
  t.after(async () => {
    await u.close();
    for (const up of ups) await up.close();
    const server = restarted.server;
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const statuses = new Map<number, number>();
  let total = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        const r = await request(`${u.url}/`, { agent });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1); // a transport error counts as a failure
      }
      total++;
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);

  await waitFor(() => total >= 100, 10_000, 'warm-up load');
  const downLogs = () => u.logs.filter((l) => l.msg === 'upstream server unhealthy' && l.server === c.url);
  const upLogs = () => u.logs.filter((l) => l.msg === 'upstream server healthy' && l.server === c.url);
  const accessBeforeKill = u.access.length;
  const killedAt = Date.now();
  await c.close();
  await waitFor(() => downLogs().length > 0, 10_000, 'c ejected or marked down');
  const ejectedAfterMs = Date.now() - killedAt;
  const firstDown = downLogs()[0]!;
  // Stay down until the active checks agree (fall: 2), so recovery needs both producers.
  const endpoint = u.usher.runtime.clusters.get('app')!.endpoints[2]!;
  await waitFor(() => !endpoint.health.activeUp, 10_000, 'active checks see c down');
  const activeDownAfterMs = Date.now() - killedAt;
  // Requests that met the dead server before it was taken out (each needed a retry).
  const retried = u.access.slice(accessBeforeKill).filter((l) => (l.attempts as number) > 1).length;
  const duringOutage = u.access.length - accessBeforeKill;

  const served = { n: 0 };
  const restartedAt = Date.now();
  restarted.server = await listenOn(c.port, 'c', served);
  await waitFor(() => upLogs().length > 0, 10_000, 'c healthy again');
  const readmittedAfterMs = Date.now() - restartedAt;
  await waitFor(() => served.n > 10, 10_000, 'c serving again');
  stop = true;
  await load;

  const failures = total - (statuses.get(200) ?? 0);
  t.diagnostic(
    `chaos: ${total} requests, ${failures} failed; c taken out ${ejectedAfterMs} ms after the kill (${firstDown.source}: ${firstDown.reason}); ` +
      `active checks agreed after ${activeDownAfterMs} ms; ${duringOutage} requests during the outage, ${retried} of them needed a retry; ` +
      `c healthy again ${readmittedAfterMs} ms after the restart (${upLogs()[0]!.source}: ${upLogs()[0]!.reason}), then served ${served.n} requests`,
  );
  assert.equal(failures, 0, `statuses: ${JSON.stringify([...statuses])}`);
  // Taken out within the configured bounds: at most consecutive_connect_failures (2) per
  // concurrent client (4) met the dead server, plus the resets of pooled connections it had.
  assert.ok(retried <= 2 * 4 + 4, `retried ${retried}`);
  assert.equal(downLogs().length, 1, 'one state change down (the second producer only confirmed it)');
  assert.equal(upLogs().length, 1);
});
