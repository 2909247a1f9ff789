import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { certDir, type TestCert } from '../helpers/certs.js';
import { startUsher } from '../helpers/usher.js';

/** A real HTTPS upstream; answers with the verified client certificate's CN, if any. */
async function httpsUpstream(cert: TestCert, clientCa?: TestCert): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(
    { cert: cert.cert, key: cert.key, ...(clientCa ? { ca: clientCa.cert, requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.end(`secure upstream${peer?.subject ? ` client=${peer.subject.CN}` : ''}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function pki() {
  const certs = certDir();
  const ca = certs.ca('upstream-ca');
  const clientCa = certs.ca('usher-client-ca');
  return {
    certs,
    ca,
    clientCa,
    byIp: certs.issue('up-ip', { cn: 'up-ip', sans: ['IP:127.0.0.1'], ca }),
    byName: certs.issue('up-name', { cn: 'up.test', sans: ['DNS:up.test'], ca }),
    usherClient: certs.issue('usher-client', { cn: 'usher-edge', ca: clientCa, client: true }),
  };
}

async function usherFor(t: { after: (fn: () => Promise<void>) => void }, upstreams: Record<string, Record<string, unknown>>) {
  const routes = Object.keys(upstreams).map((name) => ({ match: { path: `/${name}` }, upstream: name }));
  const u = await startUsher({ upstreams, routes });
  t.after(() => u.close());
  return u;
}

test('upstream TLS: verification is on by default; an unknown CA is a 502 upstream_tls_failed; the configured CA succeeds', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const up = await httpsUpstream(p.byIp);
  t.after(() => up.close());
  const u = await usherFor(t, {
    plain: { servers: [up.url] },
    trusted: { servers: [up.url], tls: { ca: p.ca.certPath } },
    insecure: { servers: [up.url], tls: { insecure_skip_verify: true } },
  });
  const failed = await request(`${u.url}/plain`);
  assert.equal(failed.status, 502);
  assert.match(failed.body, /reason: upstream_tls_failed/);
  assert.ok(failed.headers['x-request-id']);
  assert.equal(u.access.at(-1)?.reason, 'upstream_tls_failed');

  const ok = await request(`${u.url}/trusted`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'secure upstream');

  const insecure = await request(`${u.url}/insecure`);
  assert.equal(insecure.status, 200, 'insecure_skip_verify accepts any certificate');
  assert.ok(u.logs.some((l) => l.level === 40 && l.upstream === 'insecure' && String(l.msg).startsWith('INSECURE:')), 'logged as a warning at load');
});

test('upstream TLS: servername sets SNI and the name checked; a name mismatch is upstream_tls_failed', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const up = await httpsUpstream(p.byName);
  t.after(() => up.close());
  const u = await usherFor(t, {
    noname: { servers: [up.url], tls: { ca: p.ca.certPath } },
    named: { servers: [up.url], tls: { ca: p.ca.certPath, servername: 'up.test' } },
  });
  const mismatch = await request(`${u.url}/noname`);
  assert.equal(mismatch.status, 502);
  assert.match(mismatch.body, /reason: upstream_tls_failed/);
  const named = await request(`${u.url}/named`);
  assert.equal(named.status, 200);
});

test('upstream mTLS: usher presents its client certificate when configured; without it the upstream refuses', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const up = await httpsUpstream(p.byIp, p.clientCa);
  t.after(() => up.close());
  const u = await usherFor(t, {
    anon: { servers: [up.url], tls: { ca: p.ca.certPath } },
    mtls: { servers: [up.url], tls: { ca: p.ca.certPath, cert: p.usherClient.certPath, key: p.usherClient.keyPath } },
  });
  const withCert = await request(`${u.url}/mtls`);
  assert.equal(withCert.status, 200);
  assert.equal(withCert.body, 'secure upstream client=usher-edge');
  const anon = await request(`${u.url}/anon`);
  assert.equal(anon.status, 502);
  // In TLS 1.3 the server rejects the missing certificate after the client's handshake is done,
  // and undici reports only "other side closed": upstream_reset, not upstream_tls_failed.
  assert.match(anon.body, /reason: upstream_(tls_failed|reset)/);
});

test('upstream TLS: the name verified is the server URL\'s (or tls.servername), never the client\'s preserved Host', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const byName = await httpsUpstream(p.byName);
  t.after(() => byName.close());
  const byIp = await httpsUpstream(p.byIp);
  t.after(() => byIp.close());
  let handshakes = 0;
  byIp.server.on('secureConnection', () => handshakes++);
  const u = await usherFor(t, {
    // Host is preserved (the default): undici alone would take SNI and the checked name from it.
    ipname: { servers: [byName.url], tls: { ca: p.ca.certPath } },
    ip: { servers: [byIp.url], tls: { ca: p.ca.certPath } },
    named: { servers: [byName.url], tls: { ca: p.ca.certPath, servername: 'up.test' } },
  });
  // A client naming the certificate's host must not make a certificate for up.test pass for 127.0.0.1.
  const forged = await request(`${u.url}/ipname`, { headers: { host: 'up.test' } });
  assert.equal(forged.status, 502);
  assert.match(forged.body, /reason: upstream_tls_failed/);
  // An unrelated public Host still verifies against the server's own address...
  for (const host of ['www.example.com', 'other.example.org', 'up.test']) {
    const ok = await request(`${u.url}/ip`, { headers: { host } });
    assert.equal(ok.status, 200, `Host ${host} → 127.0.0.1 verified by IP`);
  }
  // One pooled connection served all three: a changing Host does not make undici reconnect.
  assert.equal(handshakes, 1, 'the upstream connection is reused across client Host values');
  // ...and against the configured servername, whatever Host the client sends.
  for (const host of ['www.example.com', 'evil.test']) {
    const ok = await request(`${u.url}/named`, { headers: { host } });
    assert.equal(ok.status, 200, `Host ${host} → servername up.test`);
  }
});
