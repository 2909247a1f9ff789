import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toHttp1Headers } from '../../src/server/h2-headers.js';
import { grpcStatusFor } from '../../src/proxy/grpc.js';

test('HTTP/2 → HTTP/1.1 fields: pseudo-headers dropped, :authority becomes Host (one only), cookies joined', () => {
  assert.deepEqual(
    toHttp1Headers([':method', 'GET', ':path', '/x', ':scheme', 'https', ':authority', 'a.test', 'cookie', 'a=1', 'x-y', 'z', 'cookie', 'b=2', 'host', 'a.test']),
    ['host', 'a.test', 'cookie', 'a=1; b=2', 'x-y', 'z'],
  );
  assert.deepEqual(toHttp1Headers([':method', 'GET', ':path', '/', 'host', 'h.test']), ['host', 'h.test'], 'Host alone is kept');
  assert.deepEqual(toHttp1Headers([':method', 'GET', ':path', '/']), [], 'neither: no Host');
  assert.deepEqual(toHttp1Headers([':method', 'CONNECT', ':protocol', 'websocket', ':path', '/ws', ':authority', 'w.test']), ['host', 'w.test']);
  assert.deepEqual(toHttp1Headers([':method', 'GET', ':path', '/', ':authority', 'A.test:80', 'host', 'a.TEST:80']), ['host', 'A.test:80'], 'the same authority in another case');
});

test('HTTP/2 requests that would reach upstreams with a different or forged host are malformed (RFC 9113 §8.3.1)', () => {
  assert.equal(toHttp1Headers([':method', 'GET', ':path', '/', ':authority', 'user@a.test']), null, 'userinfo in :authority');
  assert.equal(toHttp1Headers([':method', 'GET', ':path', '/', ':authority', 'a.test', 'host', 'admin.internal']), null, 'Host disagreeing with :authority');
});

test('usher reasons map to gRPC status codes', () => {
  assert.equal(grpcStatusFor('no_route'), 12);
  assert.equal(grpcStatusFor('method_not_allowed'), 12);
  assert.equal(grpcStatusFor('upstream_connect_refused'), 14);
  assert.equal(grpcStatusFor('upstream_connect_timeout'), 14);
  assert.equal(grpcStatusFor('no_upstream_server'), 14);
  assert.equal(grpcStatusFor('shutting_down'), 14);
  assert.equal(grpcStatusFor('upstream_timeout'), 4);
  assert.equal(grpcStatusFor('request_body_timeout'), 4);
  assert.equal(grpcStatusFor('body_too_large'), 8);
  assert.equal(grpcStatusFor('bad_request'), 13);
  assert.equal(grpcStatusFor('internal_error'), 13);
});
