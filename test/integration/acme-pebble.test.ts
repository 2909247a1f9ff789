// ACME end to end against Pebble (Let's Encrypt's test CA), started on loopback by the test.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { httpsGet } from '../helpers/certs.js';
import { pebbleInstalled, startPebble, type Pebble } from '../helpers/pebble.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

if (!pebbleInstalled()) throw new Error('pebble is not installed: `node scripts/system-deps.js` installs it or prints the command (npm test runs it first)');

let pebble: Pebble;
let up: TestUpstream;
before(async () => {
  pebble = await startPebble();
  up = await startUpstream('app');
});
after(async () => {
  await up.close();
  await pebble.close();
});

function acmeUsher(storage: string, acme: Record<string, unknown>, listeners: Record<string, unknown>[]): Promise<TestUsher> {
  return startUsher({
    log: { level: 'info', access_log: false },
    listeners,
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
    acme: { directory: pebble.directory, ca: pebble.caPath, storage, retry: { min: '200ms', max: '2s' }, check_interval: '1h', ...acme },
  });
}

function handshake(port: number, servername: string, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca }, () => resolve(s));
    s.on('error', reject);
  });
}

async function servedFingerprint(port: number, name: string, root: string): Promise<string> {
  const s = await handshake(port, name, root);
  const fp = s.getPeerCertificate().fingerprint256;
  s.destroy();
  return fp;
}

test('HTTP-01: obtain, serve by SNI (verifies against pebble\'s root), renew, restart with the stored certificate (no new order)', { timeout: 120_000 }, async (t) => {
  const storage = mkdtempSync(join(tmpdir(), 'usher-acme-'));
  t.after(() => rmSync(storage, { recursive: true, force: true }));
  const domain = 'a.acme.test';
  const listeners = [{ address: `127.0.0.1:${pebble.httpPort}`, redirect_https: true }, { address: `127.0.0.1:${pebble.tlsPort}`, tls: {} }];
  const u = await acmeUsher(storage, { domains: [domain], challenges: ['http-01'] }, listeners);
  const acme = u.usher.acme!;
  try {
    await waitFor(() => acme.issued === 1 || u.logs.some((l) => l.level === 50), 30_000, 'the first certificate');
    assert.equal(acme.issued, 1, JSON.stringify(u.logs.filter((l) => l.level === 50)));
    const root = await pebble.root();
    const r = await httpsGet(pebble.tlsPort, { servername: domain, ca: root });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'app');
    assert.equal(r.peer.subjectaltname, `DNS:${domain}`);
    const first = r.peer.fingerprint256;
    assert.ok(u.logs.some((l) => l.msg === 'ACME: certificate obtained' && l.domain === domain));

    // Renew: a renewal window longer than the certificate's life makes the next check renew.
    const { config } = await import('../helpers/usher.js');
    await u.usher.reload(
      config({
        log: { level: 'info', access_log: false },
        listeners,
        upstreams: { app: { servers: [up.url] } },
        routes: [{ upstream: 'app' }],
        acme: { domains: [domain], directory: pebble.directory, ca: pebble.caPath, storage, challenges: ['http-01'], renew_before_days: 36500, check_interval: '1h', retry: { min: '200ms', max: '2s' } },
      }),
    );
    await waitFor(() => acme.issued === 2 || u.logs.filter((l) => l.level === 50).length > 0, 30_000, 'the renewed certificate');
    assert.equal(acme.issued, 2, JSON.stringify(u.logs.filter((l) => Number(l.level) >= 40)));
    const renewed = await servedFingerprint(pebble.tlsPort, domain, root);
    assert.notEqual(renewed, first, 'new handshakes get the renewed certificate');
  } finally {
    await u.close();
  }

  // Restart on the same storage: the stored certificate is served, nothing is ordered.
  const again = await acmeUsher(storage, { domains: [domain], challenges: ['http-01'] }, listeners);
  t.after(() => again.close());
  const acme2 = again.usher.acme!;
  await waitFor(() => acme2.checks >= 1, 5000, 'the first check');
  assert.equal(acme2.orders, 0);
  const root = await pebble.root();
  const stored = await servedFingerprint(pebble.tlsPort, domain, root);
  const r = await httpsGet(pebble.tlsPort, { servername: domain, ca: root });
  assert.equal(r.peer.fingerprint256, stored);
  assert.equal(r.status, 200);
});

test('TLS-ALPN-01: a TLS listener alone proves the name (no plain listener for HTTP-01)', { timeout: 120_000 }, async (t) => {
  const storage = mkdtempSync(join(tmpdir(), 'usher-acme-'));
  t.after(() => rmSync(storage, { recursive: true, force: true }));
  const domain = 'b.acme.test';
  // No plain listener: HTTP-01 cannot succeed, so the certificate proves TLS-ALPN-01 worked.
  const u = await acmeUsher(storage, { domains: [domain], challenges: ['tls-alpn-01'] }, [{ address: `127.0.0.1:${pebble.tlsPort}`, tls: {} }]);
  t.after(() => u.close());
  const acme = u.usher.acme!;
  await waitFor(() => acme.issued === 1 || u.logs.some((l) => l.level === 50), 30_000, 'the certificate');
  assert.equal(acme.issued, 1, JSON.stringify(u.logs.filter((l) => l.level === 50)));
  const root = await pebble.root();
  const r = await httpsGet(pebble.tlsPort, { servername: domain, ca: root });
  assert.equal(r.status, 200);
  assert.equal(r.peer.subjectaltname, `DNS:${domain}`);
});
