import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterResponseHeaders, forwardedNode, RequestHead, scanRequestHeaders, type ForwardSettings } from '../../src/proxy/headers.js';

const settings: ForwardSettings = {
  trusted: null,
  via: '1.1 usher',
  via2: '2 usher',
  dropUnderscore: true,
  requestIdHeader: 'x-request-id',
  hideResponse: new Set(['server', 'x-powered-by']),
};

test('request: hop-by-hop, usher-owned and underscore fields are dropped; the rest keeps its case and order', () => {
  const raw = [
    'Host', 'a.test', 'Connection', 'keep-alive, X-Secret', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
    'X-Secret', 's', 'Proxy-Connection', 'x', 'Upgrade', 'h2c', 'Accept', '*/*', 'X_Under', 'u',
    'X-Forwarded-For', '1.2.3.4', 'Content-Length', '3', 'X-Request-Id', 'abc', 'Trailer', 'x', 'Expect', '100-continue',
  ];
  const head = new RequestHead();
  const out: string[] = [];
  scanRequestHeaders(raw, settings, head, out);
  assert.deepEqual(out, ['Accept', '*/*', 'Content-Length', '3']);
  assert.equal(head.host, 'a.test');
  assert.equal(head.contentLength, '3');
  assert.equal(head.xff, '1.2.3.4');
  assert.equal(head.requestId, 'abc');
});

test('request: Connection cannot remove Host or Content-Length', () => {
  const head = new RequestHead();
  const out: string[] = [];
  scanRequestHeaders(['Host', 'a', 'Content-Length', '1', 'Connection', 'content-length, host, x-a', 'X-A', '1'], settings, head, out);
  assert.deepEqual(out, ['Content-Length', '1']);
});

test('response: hop-by-hop, Connection-named and hidden fields are dropped', () => {
  const raw = ['Server', 'nginx', 'X-Powered-By', 'php', 'Connection', 'x-internal', 'X-Internal', '1', 'Transfer-Encoding', 'chunked', 'Keep-Alive', 'timeout=5', 'Content-Type', 'text/plain', 'X-Request-Id', 'up'].map((s) => Buffer.from(s));
  const out: string[] = [];
  filterResponseHeaders(raw, settings, out);
  assert.deepEqual(out, ['Content-Type', 'text/plain']);
});

test('Forwarded node: IPv6 is bracketed and quoted (RFC 7239 §6)', () => {
  assert.equal(forwardedNode('192.0.2.1'), '192.0.2.1');
  assert.equal(forwardedNode('2001:db8::1'), '"[2001:db8::1]"');
});
