// HTTP/2 abuse: each attack is sent as raw frames (node's client would not send them), and each
// test checks both that the abusive connection is bounded and that another client is served.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { constants } from 'node:http2';
import { test } from 'node:test';
import { FLAG, frame, FRAME, h2request, h2session, indexed, literal, literalIndexed, parseFrames, rawH2, requestBlock } from '../helpers/h2.js';
import { proxyTo, waitFor } from '../helpers/usher.js';

const RST_CANCEL = Buffer.from([0, 0, 0, 8]);
const ENHANCE_YOUR_CALM = 11;

async function anotherClientServed(url: string): Promise<void> {
  const s = await h2session(url);
  try {
    const r = await h2request(s, { ':path': '/other' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'a');
  } finally {
    s.close();
  }
}

test('Rapid Reset (CVE-2023-44487): 200 streams opened and reset at once → GOAWAY ENHANCE_YOUR_CALM, connection closed', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: { max_resets: 50, reset_window: '10s' } }] });
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  const frames: Buffer[] = [];
  for (let id = 1; id < 2 * 200; id += 2) {
    frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, requestBlock(`/r${id}`)));
    frames.push(frame(FRAME.RST_STREAM, 0, id, RST_CANCEL));
  }
  c.socket.write(Buffer.concat(frames));
  await waitFor(() => c.closed(), 5000, 'the abusive connection to be closed');
  const goaway = parseFrames(c.received()).find((f) => f.type === FRAME.GOAWAY);
  assert.equal(goaway?.errorCode, ENHANCE_YOUR_CALM);
  // 200 resets is far below nghttp2's own limit (a burst of 1000): this GOAWAY is usher's max_resets.
  assert.ok(up.requests.length < 200, `streams reset before they were handled cost no upstream request (${up.requests.length} of 200 did)`);
  await anotherClientServed(u.url);
});

test('CONTINUATION flood: a header block that never ends is cut off, usher keeps serving', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: { max_header_list_size: '16kb' } }] });
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  c.socket.write(frame(FRAME.HEADERS, 0, 1, requestBlock('/flood')));
  // 4000 CONTINUATION frames of 1 KiB each, none with END_HEADERS (4 MiB of header block).
  const chunk = frame(FRAME.CONTINUATION, 0, 1, literal('x-flood', 'a'.repeat(1000)));
  let sent = 0;
  while (sent < 4000 && !c.closed()) {
    c.socket.write(Buffer.concat(Array.from({ length: 100 }, () => chunk)));
    sent += 100;
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => c.closed(), 5000, 'the flooding connection to be closed');
  const frames = parseFrames(c.received());
  assert.ok(frames.some((f) => f.type === FRAME.GOAWAY || (f.type === FRAME.RST_STREAM && f.streamId === 1)), 'the server refused the block');
  assert.equal(up.requests.length, 0, 'nothing reached the upstream');
  await anotherClientServed(u.url);
});

test('HPACK bomb: a small block that decodes past max_header_list_size is refused, usher keeps serving', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: { max_header_list_size: '16kb' } }] });
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  // One 4000-byte field into the dynamic table, then 1000 one-byte references to it: ~4 MB decoded
  // from a ~5 KB block (RFC 7541 §7.3 — the decoded size is what SETTINGS_MAX_HEADER_LIST_SIZE bounds).
  const block = Buffer.concat([requestBlock('/bomb'), literalIndexed('x-bomb', 'b'.repeat(4000)), ...Array.from({ length: 1000 }, () => indexed(62))]);
  c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block));
  await waitFor(() => parseFrames(c.received()).some((f) => (f.type === FRAME.RST_STREAM && f.streamId === 1) || f.type === FRAME.GOAWAY) || c.closed(), 5000, 'a refusal');
  assert.equal(up.requests.length, 0, 'nothing reached the upstream');
  // The same connection may still be used for a normal request if only the stream was reset.
  await anotherClientServed(u.url);
});

test('too many header fields on HTTP/2 are 431 too_many_headers, as on HTTP/1.1', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: {} }], limits: { header_count: 10 } });
  const s = await h2session(u.url);
  t.after(() => s.close());
  const headers: Record<string, string> = { ':path': '/many' };
  for (let i = 0; i < 12; i++) headers[`x-h${i}`] = 'v';
  const r = await h2request(s, headers);
  assert.equal(r.status, 431);
  assert.match(r.body.toString(), /too_many_headers/);
  assert.equal(up.requests.length, 0);
});

test('connection-specific request fields on HTTP/2 (RFC 9113 §8.2.2) make the request malformed: reset, never proxied', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  const bad = [literal('connection', 'keep-alive'), literal('transfer-encoding', 'chunked'), literal('te', 'gzip'), literal('upgrade', 'websocket')];
  bad.forEach((field, i) => c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, Buffer.concat([requestBlock(`/bad${i}`), field]))));
  const resets = () => parseFrames(c.received()).filter((f) => f.type === FRAME.RST_STREAM).length;
  await waitFor(() => resets() === bad.length || c.closed(), 5000, 'every stream refused');
  assert.equal(up.requests.length, 0);
  await anotherClientServed(u.url);
});

test('h2: an :authority with userinfo, or a Host naming another authority, is 400 bad_request and never proxied (RFC 9113 §8.3.1)', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, {
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    routes: [{ match: { host: 'public.test' }, upstream: 'app' }, { upstream: 'app' }],
  });
  const s = await h2session(u.url);
  t.after(() => s.close());
  // Refused either way, never proxied: Node 20's HTTP/2 layer passes the userinfo to usher,
  // which answers 400 bad_request; Node 22+'s (nghttp2's :authority check) resets the stream
  // with PROTOCOL_ERROR before usher sees it (RFC 9113 §8.1.1, a malformed request).
  const userinfo = await h2request(s, { ':path': '/u', ':authority': 'admin@public.test' }).catch((err: NodeJS.ErrnoException) => err);
  const byUsher = !(userinfo instanceof Error);
  if (byUsher) {
    assert.equal(userinfo.status, 400);
    assert.match(userinfo.body.toString(), /bad_request/);
  } else {
    assert.equal(userinfo.code, 'ERR_HTTP2_STREAM_ERROR');
    assert.match(userinfo.message, /NGHTTP2_PROTOCOL_ERROR/);
  }
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  // node's client would not send both: raw frames. Routing would see :authority, a Host-reading upstream the other.
  c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([requestBlock('/h', 'public.test'), literal('host', 'admin.internal')])));
  await waitFor(() => parseFrames(c.received()).some((f) => f.type === FRAME.HEADERS && f.streamId === 1), 5000, 'a reply on stream 1');
  assert.match(c.received().toString('latin1'), /bad_request/);
  assert.equal(up.requests.length, 0, 'nothing reached the upstream');
  assert.equal(u.access.filter((l) => l.reason === 'bad_request').length, byUsher ? 2 : 1);
  const same = await h2request(s, { ':path': '/ok', ':authority': 'public.test', host: 'public.test' });
  assert.equal(same.status, 200, 'a Host equal to :authority is fine');
  assert.equal(up.requests[0]!.headers.host, 'public.test');
});

test('Rapid Reset defence spares a busy connection on which a client cancels some calls (resets under half the streams)', async (t) => {
  const held: ServerResponse[] = [];
  t.after(() => held.forEach((r) => r.destroy()));
  const { up, u } = await proxyTo(
    t,
    'a',
    (req, res) => {
      req.resume();
      if (req.url!.startsWith('/slow')) held.push(res);
      else res.end('a');
    },
    { listeners: [{ address: '127.0.0.1:0', http2: { max_resets: 20, reset_window: '1m' } }] },
  );
  const s = await h2session(u.url);
  t.after(() => s.close());
  for (let i = 0; i < 60; i++) assert.equal((await h2request(s, { ':path': `/ok${i}` })).status, 200);
  // 30 calls cancelled by the client while the upstream works on them: 30 resets in 90 streams.
  for (let i = 0; i < 30; i++) {
    const st = s.request({ ':path': `/slow${i}` });
    st.on('error', () => {});
    await waitFor(() => up.requests.length === 61 + i, 5000, `call ${i} to reach the upstream`);
    st.close(constants.NGHTTP2_CANCEL);
  }
  const after = await h2request(s, { ':path': '/after' });
  assert.equal(after.status, 200, 'the same connection still serves');
  assert.equal(s.closed || s.destroyed, false);
});
