// The request path's diagnostics_channel events (src/observability/events.ts) over real sockets:
// their order for a proxied request, a connect error and its retry, the done event's status,
// reason and bytes; and that a request cut at the end of the shutdown grace period is logged as
// shutting_down (not as an upstream failure).
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import { CHANNELS, type DoneEvent } from '../../src/observability/events.js';
import { request } from '../helpers/client.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { proxyTo, startUsher, waitFor } from '../helpers/usher.js';

function record(t: { after: (fn: () => void) => void }, server: () => unknown): { name: string; ev: Record<string, unknown> }[] {
  const seen: { name: string; ev: Record<string, unknown> }[] = [];
  for (const name of Object.values(CHANNELS)) {
    const fn = (message: unknown) => {
      const ev = message as Record<string, unknown>;
      if (ev.server === server()) seen.push({ name, ev });
    };
    diagnostics.subscribe(name, fn);
    t.after(() => diagnostics.unsubscribe(name, fn));
  }
  return seen;
}

test('events: a proxied request publishes start, routed, try, upstream response and done, in that order', async (t) => {
  const who: { server?: unknown } = {};
  const seen = record(t, () => who.server);
  const { u } = await proxyTo(t, 'a');
  who.server = u.usher;
  const r = await request(`${u.url}/x`, { method: 'POST', body: 'hello' });
  assert.equal(r.status, 200);
  await waitFor(() => seen.some((s) => s.name === CHANNELS.done), 5000, 'done event');
  assert.deepEqual(seen.map((s) => s.name), [CHANNELS.requestStart, CHANNELS.routed, CHANNELS.upstreamTry, CHANNELS.upstreamConnected, CHANNELS.upstreamResponse, CHANNELS.done]);
  const done = seen.at(-1)!.ev as unknown as DoneEvent;
  assert.equal(done.status, 200);
  assert.equal(done.reason, null);
  assert.equal(done.ctx.requestId, r.headers['x-request-id']);
  assert.equal(done.ctx.upstream.attempts, 1);
  // The request's head and body were read from the connection, the response written to it.
  assert.ok(done.bytesIn! > 'POST /x HTTP/1.1\r\n'.length + 5, String(done.bytesIn));
  assert.ok(done.bytesOut! > r.body.length, String(done.bytesOut));
  assert.equal(seen[1]!.ev.route, u.config.routes[0]!.name);
  assert.equal(seen[4]!.ev.status, 200);
  // The try's head, as sent: what a tracer edits (traceparent) before the dispatch.
  const tried = seen[2]!.ev;
  assert.equal(tried.method, 'POST');
  assert.equal(tried.target, '/x');
  assert.ok(Array.isArray(tried.headers) && (tried.headers as string[]).includes('x-forwarded-for'));
  // Its connection: the wait is measured only because someone subscribed to the channel.
  assert.ok(typeof seen[3]!.ev.waitMs === 'number' && (seen[3]!.ev.waitMs as number) >= 0);
});

test('events: a refused connection publishes connect_error and retry, then the try that answers', async (t) => {
  const who: { server?: unknown } = {};
  const seen = record(t, () => who.server);
  const dead = await closedPort();
  const up = await startUpstream('live');
  t.after(() => up.close());
  const u = await startUsher({
    upstreams: { app: { servers: [`http://127.0.0.1:${dead}`, up.url], balance: 'round_robin' } },
    routes: [{ upstream: 'app' }],
  });
  t.after(() => u.close());
  who.server = u.usher;
  // Round robin starts on the dead server for one of the first two requests.
  for (let i = 0; i < 2; i++) assert.equal((await request(`${u.url}/`)).status, 200);
  await waitFor(() => seen.filter((s) => s.name === CHANNELS.done).length === 2, 5000, 'two done events');
  const names = seen.map((s) => s.name);
  const ce = names.indexOf(CHANNELS.connectError);
  assert.ok(ce >= 0, names.join(' '));
  assert.equal(names[ce + 1], CHANNELS.retry);
  assert.equal(names[ce + 2], CHANNELS.upstreamTry);
  assert.equal(seen[ce]!.ev.reason, 'upstream_connect_refused');
  assert.equal(seen[ce + 1]!.ev.attempt, 1);
  // The request that met the dead server took two tries; the done event says so.
  const attempts = seen.filter((s) => s.name === CHANNELS.done).map((s) => (s.ev as unknown as DoneEvent).ctx.upstream.attempts);
  assert.ok(attempts.includes(2) && attempts.every((a) => a === 1 || a === 2), attempts.join(','));
});

test('events: a closed usher leaves no subscriber behind (its access log unsubscribed)', async () => {
  for (const name of Object.values(CHANNELS)) assert.equal(diagnostics.channel(name).hasSubscribers, false, name);
});

test('shutdown: a request cut when the grace period ends is logged as shutting_down', async (t) => {
  // The upstream never answers: the request is still in flight when the grace period is over.
  const { u } = await proxyTo(t, 'hang', () => {});
  const pending = request(`${u.url}/slow`).then(
    (r) => r.status,
    () => 0,
  );
  await waitFor(() => u.usher.inflight === 1, 5000, 'request in flight');
  await u.close(50);
  const status = await pending;
  // The client got no answer (its connection was closed) or a 503; the log says why.
  assert.ok(status === 0 || status === 503, String(status));
  const line = u.access.find((l) => l.path === '/slow');
  assert.ok(line, JSON.stringify(u.access));
  assert.equal(line.reason, 'shutting_down');
});
