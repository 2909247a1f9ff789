import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { closedPort, startRawUpstream, startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

test('a dead server is skipped: the request is retried on a live one (connect failure)', async (t) => {
  const live = await startUpstream('live');
  const dead = await closedPort();
  // Ejection off (it is on by default): every request meets the dead server and must be retried.
  const u = await startUsher({
    upstreams: { app: { servers: [`http://127.0.0.1:${dead}`, live.url], outlier_detection: { enabled: false } } },
    routes: [{ upstream: 'app' }],
    log: { level: 'warn', access_log: true },
  });
  t.after(async () => {
    await u.close();
    await live.close();
  });
  for (let i = 0; i < 4; i++) {
    const r = await request(`${u.url}/`, { method: 'POST', body: 'payload' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'live');
  }
  await waitFor(() => u.access.length === 4);
  assert.deepEqual(u.access.map((l) => l.attempts), [2, 2, 2, 2], 'each met the dead server first, and was retried');
});

test('all servers dead: 502 upstream_connect_refused with a request id', async (t) => {
  const dead = await closedPort();
  const u = await startUsher({ upstreams: { app: { servers: [`http://127.0.0.1:${dead}`] } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  const r = await request(`${u.url}/`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 502);
  const body = JSON.parse(r.body) as { reason: string; request_id: string };
  assert.equal(body.reason, 'upstream_connect_refused');
  assert.equal(body.request_id, r.headers['x-request-id']);
  await waitFor(() => u.access.length > 0);
  assert.equal(u.access[0]!.reason, 'upstream_connect_refused');
  assert.equal(u.access[0]!.status, 502);
});

test('a slow upstream: 504 upstream_timeout after timeouts.response_header', async (t) => {
  const slow = await startUpstream('slow', (req) => req.resume()); // never answers
  const u = await startUsher({
    upstreams: { app: { servers: [slow.url], timeouts: { response_header: '200ms' } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await slow.close();
  });
  const r = await request(`${u.url}/`);
  assert.equal(r.status, 504);
  assert.match(r.body, /reason: upstream_timeout/);
});

test('an upstream that stalls mid-body: the downstream is reset, not ended as complete', async (t) => {
  const a = await startUpstream('a', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial'); // then stall forever
  });
  const u = await startUsher({ upstreams: { app: { servers: [a.url], timeouts: { body_idle: '200ms' } } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  await assert.rejects(request(`${u.url}/`), /aborted|ECONNRESET|socket hang up/);
  await waitFor(() => u.access.length > 0);
  assert.equal(u.access[0]!.reason, 'upstream_body_timeout');
});

test('an upstream that dies mid-response (chunked): the downstream is reset', async (t) => {
  const up = await startRawUpstream((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setImmediate(() => socket.destroy());
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  await assert.rejects(request(`${u.url}/`), /aborted|ECONNRESET|socket hang up/);
});

test('a client that goes away cancels its upstream request and frees the connection', async (t) => {
  let upstreamClosed = false;
  const a = await startUpstream('a', (req, res) => {
    req.resume();
    res.writeHead(200);
    res.write('streaming...');
    res.on('close', () => (upstreamClosed = true));
  });
  const u = await startUsher({ upstreams: { app: { servers: [a.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(`${u.url}/`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.on('close', () => reject(new Error('the request closed before any data arrived')));
    setTimeout(() => reject(new Error('no data')), 5000).unref();
    req.end();
  });
  await waitFor(() => upstreamClosed, 5000, 'the upstream request to be cancelled');
  await waitFor(() => u.access.length > 0);
  assert.equal(u.access[0]!.reason, 'downstream_aborted');
  assert.equal(u.usher.inflight, 0);
});

test('malicious upstream responses become 502 and the upstream connection is not reused', async () => {
  const cases: [string, string][] = [
    ['CL and TE together', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['an invalid Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello'],
    ['a bare LF in the head', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 2\r\n\r\nok'],
    ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 2\r\n\r\nok'],
    ['garbage instead of a status line', 'HTTTP/9 OK\r\n\r\n'],
  ];
  for (const [name, response] of cases) {
    const up = await startRawUpstream((socket) => socket.write(response));
    const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
    try {
      const r1 = await request(`${u.url}/`);
      assert.equal(r1.status, 502, `${name}: status`);
      assert.match(r1.body, /reason: upstream_bad_response/, `${name}: reason`);
      const r2 = await request(`${u.url}/`);
      assert.equal(r2.status, 502, `${name}: second status`);
      assert.equal(up.connections, 2, `${name}: a connection that carried a bad response is never reused`);
    } finally {
      await u.close();
      await up.close();
    }
  }
});

test('an upstream response with a Content-Length shorter than what it promised resets the downstream', async (t) => {
  const up = await startRawUpstream((socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort');
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  // A proxy that re-framed the 5 bytes it got (chunked, or a fresh Content-Length) would let
  // this request succeed; usher must cut the response so the client sees it incomplete.
  await assert.rejects(request(`${u.url}/`), /aborted|ECONNRESET|socket hang up/);
  await waitFor(() => u.access.length > 0);
  assert.equal(u.access[0]!.reason, 'upstream_reset', 'the upstream closed before the promised body was complete');
});

test('a request whose upstream is busy is not lost when another client resets (no crash, inflight returns to 0)', async (t) => {
  const a = await startUpstream('a', (req, res) => {
    req.resume();
    setTimeout(() => res.end('late'), 50);
  });
  const u = await startUsher({ upstreams: { app: { servers: [a.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await a.close();
  });
  const sockets = Array.from({ length: 20 }, () => {
    const s = connect(u.port, '127.0.0.1');
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    return s;
  });
  await waitFor(() => a.requests.length >= 1);
  for (const s of sockets) s.resetAndDestroy();
  const ok = await request(`${u.url}/`);
  assert.equal(ok.body, 'late');
  await waitFor(() => u.usher.inflight === 0, 5000, 'inflight to drain');
});
