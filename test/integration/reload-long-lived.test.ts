// Long-lived connections across reloads (issue #16 point 3): WebSockets and SSE streams on a route
// a reload left alone stay open through 20 reloads; on a route that changed or went away, the
// route's drain policy ends them (WebSocket close 1001 both ways, the SSE stream's end), logged as
// route_reloaded. Real sockets: a ws echo server, an SSE server, usher in-process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { echo, open, sse, startLiveUpstream as startUpstream, type LiveUpstream as Upstream } from '../helpers/long-lived.js';
import { h2session } from '../helpers/h2.js';
import { config, startUsher, waitFor, type TestUsher } from '../helpers/usher.js';
import { closePayload, decodeFrames, encodeFrame, OP } from '../helpers/ws-frames.js';

/** The config: route "live" (WebSockets and SSE) on upstream app, and a route "other" whose body says which reload this is. */
function settings(n: number, live: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, app: string[] = [], spare: string[] = []): Record<string, unknown> {
  return {
    log: { level: 'info', access_log: true },
    upstreams: { app: { servers: app }, spare: { servers: spare.length > 0 ? spare : app } },
    routes: [
      { name: 'other', match: { path: '/other' }, respond: { body: `v${n}` } },
      { name: 'live', match: { path: '/' }, upstream: 'app', ...live },
    ],
    ...extra,
  };
}

async function setup(t: { after(fn: () => Promise<void>): void }, live: Record<string, unknown> = {}): Promise<{ up: Upstream; spare: Upstream; u: TestUsher; reload: (n: number, liveNow?: Record<string, unknown>, extra?: Record<string, unknown>, servers?: string[]) => Promise<void> }> {
  const up = await startUpstream('app');
  const spare = await startUpstream('spare');
  const u = await startUsher(settings(0, live, {}, [up.url]));
  t.after(async () => {
    await u.close(200);
    await up.close();
    await spare.close();
  });
  const reload = (n: number, liveNow = live, extra: Record<string, unknown> = {}, servers = [up.url]) => u.usher.reload(config(settings(n, liveNow, extra, servers, n % 2 === 0 ? [spare.url] : [spare.url, up.url])));
  return { up, spare, u, reload };
}

test('a WebSocket and an SSE stream on an unchanged route stay open through 20 reloads that change everything else; the retired runtimes drain', async (t) => {
  const { up, spare, u, reload } = await setup(t);
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  const s = await sse(`${u.url}/events`);
  await echo(c, 'before');
  for (let n = 1; n <= 20; n++) {
    // Other routes, another upstream (its servers change every time), timeouts, limits and the
    // upgrade section change; so does app's server list from reload 10 on (the server this
    // connection went to stays in it).
    const extra = { timeouts: { keep_alive: `${1 + n}s` }, limits: { header_count: 100 + n }, upgrade: { idle_timeout: `${10 + n}m` } };
    await reload(n, {}, extra, n >= 10 ? [up.url, spare.url] : [up.url]);
    await echo(c, `after reload ${n}`);
    const seen = s.events.length;
    await waitFor(() => s.events.length > seen, 20_000, `an SSE event after reload ${n}`);
  }
  assert.equal(u.usher.reloadCounts.success, 20);
  assert.deepEqual(c.errors, []);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  assert.equal(s.ended() || s.aborted(), false, 'the SSE stream is still open');
  assert.equal(up.closes.length, 0, 'the upstream saw no close');
  // Both connections are counted on the runtime of now: the 20 before it drained.
  assert.equal(u.usher.runtime.inflight, 2);
  assert.equal(u.usher.longLivedConnections.size, 2);
  // The SSE events are consecutive: nothing was lost or replayed across the reloads.
  const ids = s.events.map((e) => Number(/^id: (\d+)/.exec(e)![1]));
  assert.deepEqual(ids, ids.map((_, i) => i + 1));
  // And new connections after the reloads work as usual.
  const d = await open(`ws://127.0.0.1:${u.port}/ws2`);
  await echo(d, 'new');
  d.ws.close();
  c.ws.close(1000, 'done');
  assert.deepEqual(await c.closed, { code: 1000, reason: 'done' });
  assert.ok(spare.closes.length === 0);
});

test('on a changed route, grace 0: the WebSocket gets close 1001 both ways, the SSE stream ends; both logged route_reloaded', async (t) => {
  const { up, u, reload } = await setup(t, { drain: { grace: 0, close_after: '30s' } });
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  const s = await sse(`${u.url}/events`);
  await echo(c, 'before');
  await waitFor(() => s.events.length > 0, 20_000, 'an SSE event');
  // The route changes: a header more to the upstream.
  await reload(1, { drain: { grace: 0, close_after: '30s' }, request_headers: { set: { 'x-version': '2' } } });
  const closed = await c.closed;
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /route changed/);
  assert.deepEqual(c.errors, [], 'a well-formed close, no protocol error');
  await waitFor(() => up.closes.length === 1, 20_000, 'the upstream saw the close');
  assert.equal(up.closes[0]!.code, 1001);
  await waitFor(() => s.ended() || s.aborted(), 20_000, 'the SSE stream ends');
  assert.equal(s.ended(), true, 'the SSE response ended cleanly (not reset)');
  await waitFor(() => u.access.filter((l) => l.reason === 'route_reloaded').length === 2, 20_000, 'the access-log lines');
  assert.deepEqual(u.access.filter((l) => l.reason === 'route_reloaded').map((l) => l.status).sort(), [101, 200]);
  await waitFor(() => up.streams.size === 0, 20_000, 'the upstream SSE response closed');
  // New connections take the new route.
  const d = await open(`ws://127.0.0.1:${u.port}/ws`);
  await echo(d, 'on the new route');
  d.ws.close();
});

test('a removed route: a close frame never lands inside a long frame in flight (the 4 MiB message arriving then comes whole, then 1001)', async (t) => {
  const { up, u } = await setup(t, { drain: { grace: 0, close_after: '60s' } });
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  await echo(c, 'before');
  const big = 4 * 1024 * 1024;
  c.ws.send(`big:${big}`);
  // Half of the long frame is out of the upstream (and through usher): the route goes.
  await waitFor(() => up.bigSent() >= big / 2, 60_000, 'the upstream half way');
  const cfg = settings(1, {}, {}, [up.url]);
  (cfg.routes as unknown[]).splice(1, 1);
  await u.usher.reload(config(cfg));
  assert.ok(up.bigSent() < big, 'the frame was still arriving at the reload');
  const closed = await c.closed;
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /route was removed/);
  assert.deepEqual(c.errors, [], 'no protocol error: the close frame came between frames');
  // The big message had begun before the route went: it came whole, before the close.
  assert.deepEqual(c.messages.slice(1).map((m) => m.length), [big]);
});

test('grace keeps a connection of a changed route running until it ends; close_after cuts one that does not answer the close', async (t) => {
  const { u, reload } = await setup(t, { drain: { grace: '10m', close_after: '1s' } });
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  await reload(1, { drain: { grace: '10m', close_after: '1s' }, priority: 5 });
  // Within its grace: messages still flow on the old route's tunnel.
  await echo(c, 'still here');
  await echo(c, 'and here');
  assert.equal(u.usher.longLivedConnections.size, 1);
  c.ws.close(1000);
  assert.equal((await c.closed).code, 1000);

  // A client that never answers the close frame: cut by close_after (its socket closes).
  await reload(2, { drain: { grace: 0, close_after: '1s' } });
  const raw = await open(`ws://127.0.0.1:${u.port}/ws`);
  // ws answers a close frame by itself; pausing its socket stops it from reading ours.
  (raw.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  await reload(3, { drain: { grace: 0, close_after: '1s' }, priority: 7 });
  await waitFor(() => u.usher.longLivedConnections.size === 0, 30_000, 'the cut');
  assert.ok(u.access.some((l) => l.reason === 'route_reloaded' && l.status === 101));
  raw.ws.terminate();
});

test('changing only the drain policy keeps the connection, which then follows the new policy', async (t) => {
  const { u, reload } = await setup(t, { drain: { grace: '10m' } });
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  await reload(1, { drain: { grace: 0 } });
  await echo(c, 'kept: only drain changed');
  await reload(2, { drain: { grace: 0 }, priority: 3 });
  assert.equal((await c.closed).code, 1001);
});

test('a changed upstream: kept while it lists the connection\'s server, ended once it does not', async (t) => {
  const { up, spare, u, reload } = await setup(t, { drain: { grace: 0 } });
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  await reload(1, { drain: { grace: 0 } }, {}, [up.url, spare.url]);
  await echo(c, 'a server added: kept');
  await reload(2, { drain: { grace: 0 } }, {}, [spare.url]);
  const closed = await c.closed;
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /was removed from upstream app/);
});

test('a WebSocket over HTTP/2 (RFC 8441) on an unchanged route survives 20 reloads; a change of its route sends close 1001 and ends the stream', async (t) => {
  const up = await startUpstream('app');
  const h2 = (n: number, live: Record<string, unknown> = {}) => ({ ...settings(n, { drain: { grace: 0 }, ...live }, {}, [up.url]), listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const u = await startUsher(h2(0));
  const session = await h2session(u.url);
  t.after(async () => {
    session.destroy();
    await u.close(200);
    await up.close();
  });
  await waitFor(() => session.remoteSettings.enableConnectProtocol === true, 20_000, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/ws', ':authority': 'live.test', 'sec-websocket-version': '13' }, { endStream: false });
  const status = await new Promise<number>((resolve, reject) => {
    stream.once('response', (h) => resolve(Number(h[':status'])));
    stream.once('error', reject);
  });
  assert.equal(status, 200);
  let buf: Buffer = Buffer.alloc(0);
  const frames: { opcode: number; payload: Buffer }[] = [];
  let ended = false;
  stream.on('data', (c: Buffer) => {
    const d = decodeFrames(Buffer.concat([buf, c]));
    buf = d.rest;
    frames.push(...d.frames);
  });
  stream.on('end', () => (ended = true));
  const roundTrip = async (text: string) => {
    stream.write(encodeFrame(OP.TEXT, Buffer.from(text)));
    await waitFor(() => frames.some((f) => f.opcode === OP.TEXT && f.payload.toString() === text), 20_000, `the echo of ${text}`);
  };
  await roundTrip('before');
  for (let n = 1; n <= 20; n++) {
    await u.usher.reload(config(h2(n)));
    await roundTrip(`after reload ${n}`);
  }
  assert.equal(u.usher.runtime.inflight, 1);
  await u.usher.reload(config(h2(21, { priority: 2 })));
  await waitFor(() => frames.some((f) => f.opcode === OP.CLOSE), 20_000, 'the close frame');
  const close = frames.find((f) => f.opcode === OP.CLOSE)!;
  assert.equal(close.payload.readUInt16BE(0), 1001);
  assert.match(close.payload.subarray(2).toString(), /route changed/);
  assert.equal(buf.length, 0, 'no partial frame before it');
  // The client answers the close: usher ends the stream (END_STREAM), and the upstream saw 1001.
  stream.write(encodeFrame(OP.CLOSE, closePayload(1001, '')));
  await waitFor(() => ended, 20_000, 'END_STREAM');
  await waitFor(() => up.closes.length === 1, 20_000, 'the upstream saw the close');
  assert.equal(up.closes[0]!.code, 1001);
});

test('shutdown closes long-lived connections gracefully at once: a WebSocket gets 1001, an SSE stream ends; a 10-minute grace is not waited out', async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const u = await startUsher(settings(0, {}, {}, [up.url]));
  const c = await open(`ws://127.0.0.1:${u.port}/ws`);
  const s = await sse(`${u.url}/events`);
  await echo(c, 'before');
  await waitFor(() => s.events.length > 0, 20_000, 'an SSE event');
  // If shutdown waited for them, this would outlast the test's own timeout.
  await u.close(600_000);
  const closed = await c.closed;
  assert.equal(closed.code, 1001);
  assert.equal(closed.reason, 'usher is shutting down');
  assert.deepEqual(c.errors, []);
  await waitFor(() => s.ended() || s.aborted(), 20_000, 'the SSE stream ends');
  assert.equal(s.ended(), true, 'ended cleanly, not reset');
  assert.deepEqual(u.access.map((l) => [l.status, l.reason]).sort(), [[101, 'shutting_down'], [200, 'shutting_down']]);
  await waitFor(() => up.closes.length === 1, 20_000, 'the upstream saw the close');
  assert.equal(up.closes[0]!.code, 1001);
});
