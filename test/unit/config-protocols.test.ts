import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, type ConfigIssue } from '../../src/config/index.js';

function errors(text: string): [number | undefined, number | undefined, string, string, string?][] {
  const r = loadConfigText(text, 'usher.yaml', {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.errors.map((i: ConfigIssue) => [i.line, i.column, i.path, i.message, ...(i.hint === undefined ? [] : [i.hint])] as [number | undefined, number | undefined, string, string, string?]);
}

test('http2 listener options: defaults, units, and precise errors', () => {
  const r = loadConfigText('listeners:\n  - address: 8080\n    http2: { max_header_list_size: 8kb, reset_window: 2s }\n', 'usher.yaml', {});
  assert.ok(r.ok);
  assert.deepEqual(r.config.listeners[0]!.http2, {
    max_concurrent_streams: 100,
    max_header_list_size: 8192,
    max_session_memory: 10 * 1024 * 1024,
    max_resets: 200,
    reset_window: 2000,
  });
  const bad = errors('listeners:\n  - address: 8080\n    http2: { max_concurrent_streams: 0, streams: 5 }\n');
  assert.deepEqual(
    bad.map((e) => [e[0], e[2]]),
    [
      [3, 'listeners[0].http2.max_concurrent_streams'],
      [3, 'listeners[0].http2.streams'],
    ],
  );
});

test('upstream protocol must agree with the server URL scheme', () => {
  const e = errors('listeners: [{ address: 8080 }]\nupstreams:\n  g:\n    protocol: h2c\n    servers: [https://x:1]\nroutes: [{ upstream: g }]\n');
  assert.deepEqual(e, [[5, 15, 'upstreams.g.servers[0]', 'protocol h2c needs http:// servers, got "https://x:1"', 'use protocol: h2 for HTTP/2 over TLS']]);
  const e2 = errors('listeners: [{ address: 8080 }]\nupstreams:\n  g:\n    protocol: h2\n    servers: [{ url: "http://x:1" }]\nroutes: [{ upstream: g }]\n');
  assert.deepEqual(e2, [[5, 22, 'upstreams.g.servers[0].url', 'protocol h2 needs https:// servers, got "http://x:1"', 'use protocol: h2c for cleartext HTTP/2']]);
  const e3 = errors('listeners: [{ address: 8080 }]\nupstreams:\n  g: { protocol: h3, servers: [http://x] }\nroutes: [{ upstream: g }]\n');
  assert.equal(e3[0]![2], 'upstreams.g.protocol');
});

test('upgrade.protocols: h2c cannot be allowed', () => {
  const e = errors('listeners: [{ address: 8080 }]\nupgrade: { protocols: [websocket, H2C] }\n');
  assert.deepEqual(e, [[2, 35, 'upgrade.protocols[1]', 'h2c upgrades cannot be allowed: they would tunnel HTTP/2 past routing', 'enable http2 on the listener for h2c']]);
});
