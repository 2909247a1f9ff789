import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyUpstreamError, ProxyError, REASONS } from '../../src/errors/index.js';

test('upstream errors map to stable reason codes (undici and OS codes)', () => {
  const table: [Record<string, unknown>, boolean, string][] = [
    [{ code: 'ECONNREFUSED' }, false, 'upstream_connect_refused'],
    [{ code: 'UND_ERR_CONNECT_TIMEOUT' }, false, 'upstream_connect_timeout'],
    [{ code: 'ENOTFOUND' }, false, 'upstream_connect_failed'],
    [{ code: 'UND_ERR_HEADERS_TIMEOUT' }, false, 'upstream_timeout'],
    [{ code: 'UND_ERR_BODY_TIMEOUT' }, true, 'upstream_body_timeout'],
    [{ code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' }, true, 'upstream_bad_response'],
    [{ name: 'HTTPParserError', message: 'Response does not match the HTTP/1.1 protocol' }, false, 'upstream_bad_response'],
    [{ code: 'HPE_SOMETHING_NEW' }, false, 'upstream_bad_response'],
    [{ code: 'UND_ERR_SOCKET', message: 'bad response' }, false, 'upstream_bad_response'],
    [{ code: 'UND_ERR_SOCKET', message: 'other side closed' }, false, 'upstream_reset'],
    [{ code: 'ECONNRESET' }, true, 'upstream_reset'],
    [{}, false, 'upstream_reset'],
  ];
  for (const [err, started, expected] of table) assert.equal(classifyUpstreamError(err, started), expected, JSON.stringify(err));
});

test('only connect failures are retryable; every reason has a status and source', () => {
  const retryable = Object.entries(REASONS).filter(([, r]) => r.retryable).map(([code]) => code).sort();
  assert.deepEqual(retryable, ['upstream_connect_failed', 'upstream_connect_refused', 'upstream_connect_timeout']);
  for (const [code, r] of Object.entries(REASONS)) {
    assert.ok(r.status >= 200 && r.status <= 599, code);
    assert.ok(['downstream', 'upstream', 'internal'].includes(r.source), code);
  }
  const e = new ProxyError('upstream_timeout', { cause: new Error('x') });
  assert.equal(e.status, 504);
  assert.equal(e.code, 'upstream_timeout');
  assert.ok(e.cause instanceof Error);
});
