import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { rawRequest, request } from '../helpers/client.js';
import { certDir, httpsGet } from '../helpers/certs.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';
import { applyClientIdentity } from '../../src/tls/client-cert.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

function setup() {
  const certs = certDir();
  const ca = certs.ca('server-ca');
  const clientCa = certs.ca('client-ca');
  const otherCa = certs.ca('other-ca');
  return {
    certs,
    ca,
    clientCa,
    server: certs.issue('server', { cn: 'site.test', sans: ['DNS:site.test'], ca }),
    alice: certs.issue('alice', { cn: 'alice', sans: ['DNS:alice.clients.test', 'email:alice@example.test'], ca: clientCa, client: true }),
    mallory: certs.issue('mallory', { cn: 'mallory', ca: otherCa, client: true }),
  };
}

async function start(t: { after: (fn: () => Promise<void> | void) => void }, listeners: Record<string, unknown>[]) {
  const up = await startUpstream('app');
  // Underscore names forwarded: the forged X_Client_Cert_* spellings must still be removed.
  const u = await startUsher({ listeners, proxy: { drop_underscore_headers: false }, upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u, ports: u.usher.addresses().map((a) => a.port) };
}

function handshake(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'site.test', ...options }, () => resolve(s));
    s.on('error', reject);
  });
}

// X_Client_Cert_San: CGI-style upstreams read it as X-Client-Cert-San (HTTP_X_CLIENT_CERT_SAN).
const FORGED = { 'x-client-cert-subject': 'CN=admin', 'X-Client-Cert-Fingerprint': 'forged', 'x-client-cert-verified': 'yes', X_Client_Cert_San: 'DNS:admin', 'x-CLIENT_cert-issuer': 'CN=forged' };

test('mTLS require: a verified client certificate reaches the upstream as headers; forged ones are stripped; others are refused', async (t) => {
  const p = setup();
  t.after(() => p.certs.remove());
  const { up, ports } = await start(t, [
    { address: '127.0.0.1:0', tls: { cert: p.server.certPath, key: p.server.keyPath, client_auth: { mode: 'require', ca: p.clientCa.certPath } } },
  ]);
  const port = ports[0]!;
  const r = await httpsGet(port, { servername: 'site.test', ca: p.ca.cert, cert: p.alice.cert, key: p.alice.key, headers: FORGED });
  assert.equal(r.status, 200);
  const h = up.requests.at(-1)!.headers;
  assert.equal(h['x-client-cert-subject'], 'CN=alice');
  assert.equal(h['x-client-cert-issuer'], 'CN=client-ca');
  assert.equal(h['x-client-cert-fingerprint'], new X509Certificate(p.alice.cert).fingerprint256.replaceAll(':', '').toLowerCase());
  assert.equal(h['x-client-cert-san'], 'DNS:alice.clients.test, email:alice@example.test');
  assert.equal(h['x-client-cert-verified'], undefined, 'every forged X-Client-Cert-* header is removed');
  // Only one value each: the forged one did not survive next to the real one.
  const raw = up.requests.at(-1)!.rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]!.toLowerCase().startsWith('x-client-cert-'));
  assert.deepEqual(raw.sort(), ['x-client-cert-fingerprint', 'x-client-cert-issuer', 'x-client-cert-san', 'x-client-cert-serial', 'x-client-cert-subject']);

  // No certificate, or one from another CA: the handshake fails (the server alerts).
  const before = up.requests.length;
  await assert.rejects(httpsGet(port, { servername: 'site.test', ca: p.ca.cert }), (e: NodeJS.ErrnoException) => /CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/i.test(`${e.code} ${e.message}`));
  await assert.rejects(httpsGet(port, { servername: 'site.test', ca: p.ca.cert, cert: p.mallory.cert, key: p.mallory.key }), (e: NodeJS.ErrnoException) => /UNKNOWN_CA|ECONNRESET|socket hang up/i.test(`${e.code} ${e.message}`));
  assert.equal(up.requests.length, before, 'nothing reached the upstream');
});

test('mTLS request: without a certificate the request proceeds with no identity; forged headers are stripped on plain listeners too', async (t) => {
  const p = setup();
  t.after(() => p.certs.remove());
  const { up, ports } = await start(t, [
    { address: '127.0.0.1:0', tls: { cert: p.server.certPath, key: p.server.keyPath, client_auth: { mode: 'request', ca: p.clientCa.certPath } } },
    { address: '127.0.0.1:0' },
  ]);
  const anon = await httpsGet(ports[0]!, { servername: 'site.test', ca: p.ca.cert, headers: FORGED });
  assert.equal(anon.status, 200);
  let h = up.requests.at(-1)!.headers;
  assert.equal(h['x-client-cert-subject'], undefined);
  assert.equal(h['x-client-cert-fingerprint'], undefined);
  assert.deepEqual(Object.keys(h).filter((k) => /^x.client.cert/i.test(k)), [], 'no spelling of a forged header survives');
  // An unverifiable certificate is accepted in request mode but gives no identity.
  const s = await handshake(ports[0]!, { ca: p.ca.cert, cert: p.mallory.cert, key: p.mallory.key });
  s.destroy();
  const withMallory = await httpsGet(ports[0]!, { servername: 'site.test', ca: p.ca.cert, cert: p.mallory.cert, key: p.mallory.key, headers: FORGED });
  assert.equal(withMallory.status, 200);
  assert.equal(up.requests.at(-1)!.headers['x-client-cert-subject'], undefined);
  const withAlice = await httpsGet(ports[0]!, { servername: 'site.test', ca: p.ca.cert, cert: p.alice.cert, key: p.alice.key });
  assert.equal(withAlice.status, 200);
  assert.equal(up.requests.at(-1)!.headers['x-client-cert-subject'], 'CN=alice');

  // The plain listener, with a forged header in a 100-continue request too.
  const plain = await request(`http://127.0.0.1:${ports[1]}/`, { headers: { ...FORGED, x_keep: 'underscores are forwarded here' } });
  assert.equal(plain.status, 200);
  h = up.requests.at(-1)!.headers;
  assert.equal(h['x-client-cert-subject'], undefined);
  assert.equal(h.x_keep, 'underscores are forwarded here');
  assert.deepEqual(Object.keys(h).filter((k) => /^x.client.cert/i.test(k)), []);
  const cont = await rawRequest(ports[1]!, 'POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\nx-client-cert-subject: CN=admin\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi');
  assert.match(cont, /HTTP\/1.1 200/);
  assert.equal(up.requests.at(-1)!.headers['x-client-cert-subject'], undefined);
});

test('HSTS on TLS listeners only; a plain listener redirects to https except ACME challenges', async (t) => {
  const p = setup();
  t.after(() => p.certs.remove());
  const { up, u, ports } = await start(t, [
    { address: '127.0.0.1:0', tls: { cert: p.server.certPath, key: p.server.keyPath, hsts: { max_age: 600, include_subdomains: true } } },
    { address: '127.0.0.1:0', redirect_https: 8443 },
    // Another host: usher keys listeners by host, port and TLS, so two plain 127.0.0.1:0 would collide.
    { address: '127.0.0.2:0' },
  ]);
  const secure = await httpsGet(ports[0]!, { servername: 'site.test', ca: p.ca.cert });
  assert.equal(secure.headers['strict-transport-security'], 'max-age=600; includeSubDomains');
  const plain = await request(`http://127.0.0.2:${ports[2]}/`);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['strict-transport-security'], undefined, 'RFC 6797 §7.2: never over plain HTTP');

  const before = up.requests.length;
  const redirected = await request(`http://127.0.0.1:${ports[1]}/a/b?c=d`, { method: 'POST', headers: { host: 'site.test:8080' }, body: 'x' });
  assert.equal(redirected.status, 308);
  assert.equal(redirected.headers.location, 'https://site.test:8443/a/b?c=d');
  assert.equal(up.requests.length, before, 'a redirect is not proxied');
  // The redirect is a request like any other: it carries a request id and is in the access log.
  const id = redirected.headers['x-request-id'];
  assert.ok(typeof id === 'string' && id !== '', 'the 308 carries an X-Request-Id');
  await waitFor(() => u.access.some((l) => l.request_id === id), 5000, "the redirect's access-log line");
  const line = u.access.find((l) => l.request_id === id)!;
  assert.deepEqual(
    [line.status, line.method, line.path, line.host, line.route, line.upstream, line.reason],
    [308, 'POST', '/a/b?c=d', 'site.test:8080', null, null, 'local_response'],
  );
  // An ACME HTTP-01 path is not redirected (no challenge pending here: it is routed as usual).
  const challenge = await request(`http://127.0.0.1:${ports[1]}/.well-known/acme-challenge/tok`, { headers: { host: 'site.test' } });
  assert.equal(challenge.status, 200);
  assert.equal(up.requests.at(-1)!.url, '/.well-known/acme-challenge/tok');
});

test('the identity step removes forged X-Client-Cert-* from both req.rawHeaders and req.headers (HTTP/1.0 and 1.1)', async (t) => {
  const server = createServer((req, res) => {
    applyClientIdentity(req, undefined);
    res.end(JSON.stringify({ handled: false, headers: req.headers, raw: req.rawHeaders }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  for (const version of ['1.0', '1.1']) {
    const reply = await rawRequest(port, `GET / HTTP/${version}\r\nhost: a\r\nX-Client-Cert-Subject: CN=admin\r\nx-keep: 1\r\nconnection: close\r\n\r\n`);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { handled: boolean; headers: Record<string, string>; raw: string[] };
    assert.equal(body.handled, false);
    assert.equal(body.headers['x-client-cert-subject'], undefined, version);
    assert.equal(body.headers['x-keep'], '1');
    assert.deepEqual(body.raw, ['host', 'a', 'x-keep', '1', 'connection', 'close']);
  }
});
