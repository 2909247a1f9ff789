// The parts of the drain policy that need no socket: the frame cursor that lets a close frame in
// only between frames, usher's close frames, what counts as a changed route, and the config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../src/config/index.js';
import { closeFrame, FrameCursor } from '../../src/proxy/tunnel-pump.js';
import { routeChanged } from '../../src/server/drain/route-change.js';
import { decodeFrames, encodeFrame } from '../helpers/ws-frames.js';
import { seeded } from '../helpers/rng.js';

/** An unmasked frame (server to client), with the 7-bit, 16-bit or 64-bit length form. */
function serverFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.alloc(10);
  if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

test('the frame cursor finds every frame boundary, masked or not, whatever the chunking', () => {
  const random = seeded(7);
  for (const masked of [false, true]) {
    const sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000, 3];
    const frames = sizes.map((n, i) => (masked ? encodeFrame(i % 2 === 0 ? 2 : 1, Buffer.alloc(n, i)) : serverFrame(i % 2 === 0 ? 2 : 1, Buffer.alloc(n, i))));
    const boundaries = new Set<number>();
    let at = 0;
    for (const f of frames) boundaries.add((at += f.length));
    const stream = Buffer.concat(frames);
    for (let round = 0; round < 40; round++) {
      const cursor = new FrameCursor();
      const opcodes: number[] = [];
      cursor.onFrame = (op) => opcodes.push(op);
      let offset = 0;
      const seen: number[] = [];
      while (offset < stream.length) {
        const size = 1 + Math.floor(random() * (round < 20 ? 16 : 20000));
        const chunk = stream.subarray(offset, offset + size);
        // With stop, the cursor halts at each boundary inside the chunk: the same boundaries.
        let from = 0;
        while (from < chunk.length) {
          const to = cursor.scan(chunk, from, true);
          if (to === from) {
            // At a boundary already: take one byte to move on.
            cursor.scan(chunk.subarray(0, from + 1), from, false);
            from++;
            continue;
          }
          from = to;
          if (cursor.atBoundary) seen.push(offset + from);
        }
        offset += chunk.length;
      }
      assert.deepEqual(seen, [...boundaries], 'every boundary, once, and none inside a frame');
      assert.equal(cursor.atBoundary, true);
      assert.deepEqual(opcodes, sizes.map((_, i) => (i % 2 === 0 ? 2 : 1)));
    }
  }
});

test('usher\'s close frames: 1001 and the reason, unmasked to the client, masked to the upstream', () => {
  const plain = decodeFrames(closeFrame(1001, 'the route changed in a reload', false));
  assert.equal(plain.frames.length, 1);
  assert.equal(plain.frames[0]!.opcode, 8);
  assert.equal(plain.frames[0]!.payload.readUInt16BE(0), 1001);
  assert.equal(plain.frames[0]!.payload.subarray(2).toString(), 'the route changed in a reload');
  const masked = closeFrame(1001, 'x'.repeat(200), true);
  assert.equal(masked[1]! & 0x80, 0x80);
  const len = masked[1]! & 0x7f;
  assert.equal(len, 125, 'a control frame payload is at most 125 bytes');
  const key = masked.subarray(2, 6);
  const payload = Buffer.from(masked.subarray(6).map((b, i) => b ^ key[i & 3]!));
  assert.equal(payload.readUInt16BE(0), 1001);
});

const load = (routes: string) => {
  const r = loadConfigText(`listeners: [{ address: ":0" }]\nupstreams: { a: { servers: ["http://127.0.0.1:1"] }, b: { servers: ["http://127.0.0.1:2"] } }\nroutes:\n${routes}`, 'usher.yaml', {});
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config.routes;
};

test('a changed route: anything but its place in the file and its drain policy', () => {
  const [base] = load('  - { name: live, match: { path: /ws }, upstream: a }\n');
  const moved = load('  - { name: x, upstream: b }\n  - { name: live, match: { path: /ws }, upstream: a, drain: { grace: 1s } }\n')[1]!;
  assert.equal(routeChanged(base!, moved), false, 'moved and a new drain policy: unchanged');
  for (const other of ['{ name: live, match: { path: /ws }, upstream: b }', '{ name: live, match: { path: /ws2 }, upstream: a }', '{ name: live, match: { path: /ws }, upstream: a, priority: 1 }', '{ name: live, match: { path: /ws }, upstream: a, request_headers: { set: { x: "1" } } }']) {
    assert.equal(routeChanged(base!, load(`  - ${other}\n`)[0]!), true, other);
  }
});

test('routes[].drain: defaults, and errors with their place', () => {
  const [r] = load('  - { upstream: a }\n');
  assert.deepEqual(r!.drain, { grace: 30_000, close_after: 10_000 });
  const bad = loadConfigText('listeners: [{ address: ":0" }]\nupstreams: { a: { servers: ["http://127.0.0.1:1"] } }\nroutes:\n  - upstream: a\n    drain: { grace: soon, clse_after: 1s }\n', 'usher.yaml', {});
  assert.equal(bad.ok, false);
  const errors = (bad as { errors: { path: string; message: string; line: number; hint?: string }[] }).errors;
  assert.deepEqual(errors.map((e) => [e.path, e.line]), [['routes[0].drain.grace', 5], ['routes[0].drain.clse_after', 5]]);
  assert.match(errors[0]!.message, /expected a duration/);
  assert.match(errors[1]!.hint ?? '', /close_after/);
});
