// SNI with certificates of different key types. Node before 24 adds the SNI certificate to the
// handshake beside the default one instead of replacing it (nodejs/node#54235), and OpenSSL then
// presents whichever type the client's or server's order prefers: an ECDSA default hid an RSA
// certificate from TLS 1.3 clients, an RSA default hid an ECDSA one from TLS 1.2 clients.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions, type SecureVersion } from 'node:tls';
import { test } from 'node:test';
import { loadConfigText } from '../../src/config/index.js';
import { certDir, httpsGet, type KeyType } from '../helpers/certs.js';
import { brief } from '../helpers/issues.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The SHA-256 fingerprint of the certificate the server presents. */
function presented(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...options }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

const types: KeyType[] = ['ec', 'rsa'];
for (const dfltType of types) {
  for (const namedType of types) {
    test(`SNI: ${dfltType} default + ${namedType} certificate for api.example.test: each name gets its own certificate, TLS 1.2 and 1.3`, async (t) => {
      const certs = certDir();
      t.after(() => certs.remove());
      const ca = certs.ca('ca');
      const dflt = certs.issue('default', { cn: 'default.test', sans: ['DNS:default.test', 'IP:127.0.0.1'], ca, keyType: dfltType });
      const api = certs.issue('api', { cn: 'api.example.test', sans: ['DNS:api.example.test'], ca, keyType: namedType });
      const up = await startUpstream('app');
      const u = await startUsher({
        listeners: [{ address: '127.0.0.1:0', tls: { cert: dflt.certPath, key: dflt.keyPath, certificates: [{ cert: api.certPath, key: api.keyPath }] } }],
        upstreams: { app: { servers: [up.url] } },
        routes: [{ upstream: 'app' }],
      });
      t.after(async () => {
        await u.close();
        await up.close();
      });
      for (const version of ['TLSv1.2', 'TLSv1.3'] as SecureVersion[]) {
        const v = { minVersion: version, maxVersion: version, ca: ca.cert };
        assert.equal(await presented(u.port, { ...v, servername: 'api.example.test' }), fingerprint(api.cert), `${version}, SNI api.example.test`);
        assert.equal(await presented(u.port, { ...v, servername: 'API.example.test.' }), fingerprint(api.cert), `${version}, SNI in another case, absolute`);
        assert.equal(await presented(u.port, { ...v, servername: 'default.test' }), fingerprint(dflt.cert), `${version}, SNI of no named certificate`);
        assert.equal(await presented(u.port, { ...v }), fingerprint(dflt.cert), `${version}, no SNI`);
      }
      // And a whole request, verified against the name.
      const r = await httpsGet(u.port, { servername: 'api.example.test', ca: ca.cert });
      assert.equal(r.status, 200);
      assert.equal(r.peer.fingerprint256, fingerprint(api.cert));
    });
  }
}

test('SNI: TLS 1.3 suites only (ciphers without a TLS 1.2 suite) with an ECDSA default and an RSA name: each its own', async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const ca = certs.ca('ca');
  const dflt = certs.issue('default', { cn: 'default.test', sans: ['DNS:default.test'], ca, keyType: 'ec' });
  const api = certs.issue('api', { cn: 'api.example.test', sans: ['DNS:api.example.test'], ca, keyType: 'rsa' });
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls: { cert: dflt.certPath, key: dflt.keyPath, min_version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', certificates: [{ cert: api.certPath, key: api.keyPath }] } }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  assert.equal(await presented(u.port, { servername: 'api.example.test', ca: ca.cert }), fingerprint(api.cert));
  assert.equal(await presented(u.port, { servername: 'default.test', ca: ca.cert }), fingerprint(dflt.cert));
});

test('SNI: a certificate of a third key type beside a different default is refused at load, at its line', (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  certs.issue('default', { cn: 'default.test', sans: ['DNS:default.test'], keyType: 'ec' });
  certs.issue('same', { cn: 'same.test', sans: ['DNS:same.test'], keyType: 'ec' });
  certs.issue('rsa', { cn: 'rsa.test', sans: ['DNS:rsa.test'], keyType: 'rsa' });
  certs.issue('ed', { cn: 'ed.test', sans: ['DNS:ed.test'], keyType: 'ed25519' });
  const file = join(certs.dir, 'usher.yaml');
  const text = [
    'listeners:',
    '  - address: 127.0.0.1:8443',
    '    tls:',
    '      cert: default.pem',
    '      key: default-key.pem',
    '      certificates:',
    '        - { cert: same.pem, key: same-key.pem }',
    '        - { cert: rsa.pem, key: rsa-key.pem }',
    '        - { cert: ed.pem, key: ed-key.pem }',
    'upstreams: { app: { servers: [http://127.0.0.1:9] } }',
    'routes: [{ upstream: app }]',
    '',
  ].join('\n');
  const r = loadConfigText(text, file, {});
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : brief(r.errors), [
    [
      9,
      19,
      'listeners[0].tls.certificates[2].cert',
      'an Ed25519 certificate cannot be chosen by SNI beside an ECDSA default certificate: Node.js before 24 keeps the default in the handshake and may present it instead (nodejs/node#54235); usher sorts out RSA beside ECDSA only',
      'use an ECDSA or RSA key for this name, or a default certificate of the same key type',
    ],
  ]);
});

test('SNI: a certificate file replaced by one of a third key type is refused at reload; the previous one keeps serving', async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const ca = certs.ca('ca');
  const dflt = certs.issue('default', { cn: 'default.test', sans: ['DNS:default.test'], ca, keyType: 'ec' });
  const api = certs.issue('api', { cn: 'api.example.test', sans: ['DNS:api.example.test'], ca, keyType: 'ec' });
  const ed = certs.issue('ed', { cn: 'api.example.test', sans: ['DNS:api.example.test'], ca, keyType: 'ed25519' });
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls: { cert: dflt.certPath, key: dflt.keyPath, certificates: [{ cert: api.certPath, key: api.keyPath }] } }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  copyFileSync(ed.certPath, api.certPath);
  copyFileSync(ed.keyPath, api.keyPath);
  const refused = (l: Record<string, unknown>) =>
    l.msg === 'TLS certificate reload failed; still serving the previous certificates' && String((l.err as { message?: string } | undefined)?.message).includes('nodejs/node#54235');
  for (let start = Date.now(); !u.logs.some(refused); ) {
    assert.ok(Date.now() - start < 10_000, `no reload refusal logged: ${JSON.stringify(u.logs)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await presented(u.port, { servername: 'api.example.test', ca: ca.cert }), fingerprint(api.cert));
});
