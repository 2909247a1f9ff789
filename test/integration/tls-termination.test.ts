import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { certDir, httpsGet, type CertDir, type TestCert } from '../helpers/certs.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher } from '../helpers/usher.js';

interface Pki {
  certs: CertDir;
  ca: TestCert;
  dflt: TestCert;
  exact: TestCert;
  wild: TestCert;
}

function pki(): Pki {
  const certs = certDir();
  const ca = certs.ca('test-ca');
  return {
    certs,
    ca,
    dflt: certs.issue('default', { cn: 'default.test', sans: ['DNS:default.test', 'IP:127.0.0.1'], ca }),
    exact: certs.issue('exact', { cn: 'a.test', sans: ['DNS:a.test'], ca }),
    wild: certs.issue('wild', { cn: 'wild', sans: ['DNS:*.wild.test'], ca }),
  };
}

/** A TLS handshake only: resolves with the socket's certificate and protocol, or rejects with the handshake error. */
function handshake(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...options }, () => resolve(s));
    s.on('error', reject);
  });
}

/**
 * The TLS alert a failed handshake received (RFC 8446 §6.2), from node's error code:
 * ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION → PROTOCOL_VERSION. The prefix is OpenSSL's wording and
 * changes between versions (3.0 says SSLV3_ALERT_HANDSHAKE_FAILURE, 3.5 SSL/TLS_ALERT_...).
 */
function alertOf(err: NodeJS.ErrnoException): string | undefined {
  return /_ALERT_([A-Z_]+)$/.exec(err.code ?? '')?.[1];
}

async function tlsUsher(t: { after: (fn: () => Promise<void>) => void }, tls: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
    ...extra,
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

test('HTTPS listener: SNI picks the exact name, then the wildcard, else the default certificate', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { up, u } = await tlsUsher(t, {
    cert: p.dflt.certPath,
    key: p.dflt.keyPath,
    certificates: [{ cert: p.exact.certPath, key: p.exact.keyPath }, { cert: p.wild.certPath, key: p.wild.keyPath }],
  });
  const cn = async (servername: string | undefined) => {
    const r = await httpsGet(u.port, { ca: p.ca.cert, ...(servername === undefined ? {} : { servername }), host: servername ?? '127.0.0.1' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'app');
    return r.peer.subject.CN;
  };
  assert.equal(await cn('a.test'), 'a.test');
  assert.equal(await cn('A.Test'), 'a.test', 'SNI is case-insensitive');
  assert.equal(await cn('x.wild.test'), 'wild');
  assert.equal(await cn('default.test'), 'default.test');
  // No SNI at all (an IP address): the default; it verifies because it carries IP:127.0.0.1.
  assert.equal(await cn(undefined), 'default.test');
  // A wildcard covers one label only (RFC 6125 §6.4.3): a.b.wild.test gets the default.
  const deep = await handshake(u.port, { servername: 'a.b.wild.test', rejectUnauthorized: false });
  assert.equal(deep.getPeerCertificate().subject.CN, 'default.test');
  deep.destroy();
  const other = await handshake(u.port, { servername: 'other.test', rejectUnauthorized: false });
  assert.equal(other.getPeerCertificate().subject.CN, 'default.test');
  other.destroy();
  // An absolute name (trailing dot, RFC 1034 §3.1) is the same name.
  for (const [name, want] of [['a.test.', 'a.test'], ['X.Wild.Test.', 'wild']] as const) {
    const s = await handshake(u.port, { servername: name, rejectUnauthorized: false });
    const got = s.getPeerCertificate().subject.CN;
    s.destroy(); // before asserting: an open connection would hold up the close in t.after
    assert.equal(got, want, name);
  }
  assert.equal(up.requests.at(-1)!.headers['x-forwarded-proto'], 'https');
});

test('TLS 1.2 is the minimum and only AEAD suites are offered by default; TLS 1.3 and session resumption work', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath });
  // A client that offers only TLS 1.0/1.1 (allowed on its side at security level 0) gets a protocol_version alert.
  await assert.rejects(
    handshake(u.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false }),
    (err: NodeJS.ErrnoException) => alertOf(err) === 'PROTOCOL_VERSION',
  );
  // TLS 1.2 with a CBC suite only: refused (handshake failure alert).
  await assert.rejects(
    handshake(u.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256:AES128-SHA', rejectUnauthorized: false }),
    (err: NodeJS.ErrnoException) => alertOf(err) === 'HANDSHAKE_FAILURE',
  );
  const tls12 = await handshake(u.port, { maxVersion: 'TLSv1.2', ca: p.ca.cert, servername: 'default.test' });
  assert.equal(tls12.getProtocol(), 'TLSv1.2');
  assert.match(tls12.getCipher().name, /GCM|CHACHA20/);
  // Client-initiated renegotiation is refused (the server alerts; the connection fails).
  tls12.on('data', () => {});
  const renegotiated = await new Promise<string>((resolve) => {
    tls12.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
    tls12.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ? `error ${(err as NodeJS.ErrnoException).code}` : 'renegotiated'));
    tls12.write('GET / HTTP/1.1\r\nhost: default.test\r\n\r\n');
  });
  assert.match(renegotiated, /^error/);
  tls12.destroy();

  // Resumption: a TLS 1.3 ticket from the first connection resumes the second.
  const first = await new Promise<{ session: Buffer; protocol: string | null }>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: u.port, ca: p.ca.cert, servername: 'default.test' });
    s.on('error', reject);
    s.once('session', (session: Buffer) => {
      resolve({ session, protocol: s.getProtocol() });
      s.destroy();
    });
    // The ticket arrives after the handshake with the first server bytes: ask for a response.
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: default.test\r\nconnection: close\r\n\r\n'));
    s.on('data', () => {});
  });
  assert.equal(first.protocol, 'TLSv1.3');
  const second = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test', session: first.session });
  assert.equal(second.isSessionReused(), true);
  second.destroy();
});

test('ciphers is configurable: only the listed TLS 1.2 suite is negotiated', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath, ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' });
  const s = await handshake(u.port, { maxVersion: 'TLSv1.2', ca: p.ca.cert, servername: 'default.test' });
  assert.equal(s.getCipher().name, 'ECDHE-ECDSA-CHACHA20-POLY1305');
  s.destroy();
  await assert.rejects(
    handshake(u.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', rejectUnauthorized: false }),
    (err: NodeJS.ErrnoException) => alertOf(err) === 'HANDSHAKE_FAILURE',
  );
});

test('a TLS listener with min_version TLSv1.3 refuses TLS 1.2', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath, min_version: 'TLSv1.3' });
  await assert.rejects(handshake(u.port, { maxVersion: 'TLSv1.2', rejectUnauthorized: false }), (err: NodeJS.ErrnoException) => alertOf(err) === 'PROTOCOL_VERSION');
  const ok = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test' });
  assert.equal(ok.getProtocol(), 'TLSv1.3');
  ok.destroy();
});

test('a changed certificate file is picked up by new handshakes (file watch and reload); open connections keep theirs', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const live = { certPath: `${p.certs.dir}/live.pem`, keyPath: `${p.certs.dir}/live-key.pem` };
  copyFileSync(p.exact.certPath, live.certPath);
  copyFileSync(p.exact.keyPath, live.keyPath);
  const tlsConfig = { cert: p.dflt.certPath, key: p.dflt.keyPath, certificates: [{ cert: live.certPath, key: live.keyPath }] };
  const { u, up } = await tlsUsher(t, tlsConfig);
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const before = await httpsGet(u.port, { servername: 'a.test', ca: p.ca.cert, agent });
  const oldFingerprint = before.peer.fingerprint256;

  // The renewed certificate: same name, new key. Written key first, then cert, as a deploy would.
  const renewed = p.certs.issue('exact2', { cn: 'a.test', sans: ['DNS:a.test'], ca: p.ca });
  copyFileSync(renewed.keyPath, live.keyPath);
  copyFileSync(renewed.certPath, live.certPath);
  // Each poll is a fresh handshake; the watcher debounces, so the change shows up shortly.
  const seen = await eventually(async () => {
    const s = await handshake(u.port, { servername: 'a.test', ca: p.ca.cert });
    const fp = s.getPeerCertificate().fingerprint256;
    s.destroy();
    return fp !== oldFingerprint ? fp : undefined;
  }, 'the new certificate');
  assert.notEqual(seen, oldFingerprint);
  // The kept-alive connection was not touched: it still works, on its old certificate.
  const again = await httpsGet(u.port, { servername: 'a.test', ca: p.ca.cert, agent });
  assert.equal(again.status, 200);
  assert.equal(again.peer.fingerprint256, oldFingerprint);
  assert.equal(again.reused, false);

  // SIGHUP's path: a config reload re-reads the files at once (no watcher involved).
  const third = p.certs.issue('exact3', { cn: 'a.test', sans: ['DNS:a.test'], ca: p.ca });
  copyFileSync(third.keyPath, live.keyPath);
  copyFileSync(third.certPath, live.certPath);
  await u.usher.reload(config({ listeners: [{ address: '127.0.0.1:0', tls: tlsConfig }], upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] }));
  const s3 = await handshake(u.port, { servername: 'a.test', ca: p.ca.cert });
  assert.equal(s3.getPeerCertificate().fingerprint256, new X509Certificate(third.cert).fingerprint256);
  s3.destroy();
});

/** Polls an async probe until it returns a value (no fixed sleeps as synchronisation). */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('curl: verifies the SNI-selected certificate, and is refused TLS 1.1', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, {
    cert: p.dflt.certPath,
    key: p.dflt.keyPath,
    certificates: [{ cert: p.exact.certPath, key: p.exact.keyPath }],
    hsts: {},
  });
  // Asynchronous: usher runs in this process and must keep serving while curl waits.
  const curl = (args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile('curl', ['-sS', '--max-time', '10', '--cacert', p.ca.certPath, '--resolve', `a.test:${u.port}:127.0.0.1`, ...args], (err, stdout, stderr) =>
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
      );
    });
  const ok = await curl(['-D', '-', '--http1.1', `https://a.test:${u.port}/hello`]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^HTTP\/1.1 200/);
  assert.match(ok.stdout, /strict-transport-security: max-age=31536000\r\n/i);
  assert.match(ok.stdout, /\r\n\r\napp$/);
  const old = await curl(['--tlsv1.1', '--tls-max', '1.1', '--ciphers', 'DEFAULT@SECLEVEL=0', `https://a.test:${u.port}/`]);
  assert.notEqual(old.status, 0);
  assert.match(old.stderr, /protocol version|unsupported protocol|alert/i);
});

test('session_tickets: false turns resumption off', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath, session_tickets: false, min_version: 'TLSv1.3' });
  const session = await new Promise<Buffer | undefined>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: u.port, ca: p.ca.cert, servername: 'default.test' });
    let got: Buffer | undefined;
    s.on('error', reject);
    s.on('session', (b: Buffer) => (got = b));
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: default.test\r\nconnection: close\r\n\r\n'));
    s.on('data', () => {});
    s.on('close', () => resolve(got));
  });
  // Either no ticket is sent at all, or the one sent does not resume (the same flow resumes
  // with tickets on: see the TLS 1.2/1.3 test above).
  let reused = false;
  if (session !== undefined) {
    const second = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test', session });
    reused = second.isSessionReused();
    second.destroy();
  }
  assert.equal(reused, false);
});

test('session ticket keys rotate: a ticket from before a rotation stops resuming', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath, ticket_key_rotation: '1s' });
  const ticket = () =>
    new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: u.port, ca: p.ca.cert, servername: 'default.test' });
      s.on('error', reject);
      s.once('session', (b: Buffer) => {
        resolve(b);
        s.destroy();
      });
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: default.test\r\nconnection: close\r\n\r\n'));
      s.on('data', () => {});
    });
  const old = await ticket();
  // Without rotation this ticket would resume until its lifetime (5 minutes) ends.
  await eventually(async () => {
    const s = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test', session: old });
    const reused = s.isSessionReused();
    s.destroy();
    return reused ? undefined : true;
  }, 'the ticket key to rotate');
  // A fresh ticket resumes again.
  const fresh = await ticket();
  const s = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test', session: fresh });
  const reusedFresh = s.isSessionReused();
  s.destroy();
  // It may itself have been issued just before the next rotation; one retry covers that.
  assert.ok(reusedFresh || (await (async () => {
    const again = await ticket();
    const s2 = await handshake(u.port, { ca: p.ca.cert, servername: 'default.test', session: again });
    const r = s2.isSessionReused();
    s2.destroy();
    return r;
  })()));
});

test('a broken certificate file (e.g. half-deployed) keeps the previous certificate and logs an error', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const live = { certPath: `${p.certs.dir}/live.pem`, keyPath: `${p.certs.dir}/live-key.pem` };
  copyFileSync(p.exact.certPath, live.certPath);
  copyFileSync(p.exact.keyPath, live.keyPath);
  const { u } = await tlsUsher(t, { cert: p.dflt.certPath, key: p.dflt.keyPath, certificates: [{ cert: live.certPath, key: live.keyPath }] });
  const fp = async () => {
    const s = await handshake(u.port, { servername: 'a.test', ca: p.ca.cert });
    const f = s.getPeerCertificate().fingerprint256;
    s.destroy();
    return f;
  };
  const before = await fp();
  // A key that does not belong to the certificate.
  copyFileSync(p.wild.keyPath, live.keyPath);
  await eventually(async () => (u.logs.some((l) => l.msg === 'TLS certificate reload failed; still serving the previous certificates') ? true : undefined), 'the reload error');
  assert.equal(await fp(), before);
});
