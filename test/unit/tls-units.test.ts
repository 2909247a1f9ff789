import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyUpstreamError } from '../../src/errors/index.js';
import { lookupName } from '../../src/tls/certificate.js';
import { isClientCertHeader, stripClientCertHeaders } from '../../src/tls/client-cert.js';

test('SNI lookup: exact name first, then a wildcard one label up, never deeper', () => {
  const map = new Map([
    ['a.example.test', 'exact'],
    ['*.example.test', 'wild'],
  ]);
  assert.equal(lookupName(map, 'a.example.test'), 'exact');
  assert.equal(lookupName(map, 'B.Example.Test'), 'wild');
  assert.equal(lookupName(map, 'x.b.example.test'), undefined);
  assert.equal(lookupName(map, 'example.test'), undefined);
});

test('X-Client-Cert-* request headers are removed in place, in any case, others kept in order', () => {
  const raw = ['Host', 'a', 'X-Client-Cert-Subject', 'CN=admin', 'x-other', '1', 'x-client-cert-fingerprint', 'f', 'X-Client-Certs', 'kept?'];
  stripClientCertHeaders(raw);
  assert.deepEqual(raw, ['Host', 'a', 'x-other', '1', 'X-Client-Certs', 'kept?']);
});

test('TLS handshake and verification errors from upstreams map to upstream_tls_failed', () => {
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER']) {
    assert.equal(classifyUpstreamError(Object.assign(new Error('x'), { code }), false), 'upstream_tls_failed', code);
  }
  assert.equal(classifyUpstreamError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), false), 'upstream_connect_refused');
});

test('isClientCertHeader: every case and -/_ spelling of the prefix, nothing else', () => {
  for (const n of ['x-client-cert-subject', 'X-Client-Cert-San', 'X_CLIENT_CERT_SUBJECT', 'x-client_cert-x']) assert.equal(isClientCertHeader(n), true, n);
  for (const n of ['x-client-cert-', 'x-client-certs', 'x-client-cer', 'y-client-cert-subject', 'x-clientcert-subject', 'x-forwarded-for', 'host']) assert.equal(isClientCertHeader(n), false, n);
});
