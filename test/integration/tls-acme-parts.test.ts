// The parts of ACME that do not need a CA: the TLS-ALPN-01 certificate goes only to clients
// that ask for acme-tls/1, and the storage lock lets one process order at a time.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { config, startUsher, waitFor } from '../helpers/usher.js';
import { freePort } from '../helpers/pebble.js';
import { certDir, httpsGet } from '../helpers/certs.js';
import { loadCertificate } from '../../src/tls/certificate.js';
import { ListenerTls } from '../../src/tls/listener-tls.js';
import type { CertSource } from '../../src/tls/source.js';
import { AcmeStore } from '../../src/tls/acme/store.js';

const quiet = { info() {}, warn() {}, error() {} };

test('a pending TLS-ALPN-01 challenge certificate is served only on acme-tls/1 connections', async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const normal = certs.issue('normal', { cn: 'site.test', sans: ['DNS:site.test'] });
  const challenge = certs.issue('challenge', { cn: 'challenge', sans: ['DNS:site.test'] });
  const source: CertSource = {
    certificate: () => undefined,
    any: () => undefined,
    alpnChallenge: (name) => (name === 'site.test' ? loadCertificate(challenge.cert, challenge.key) : undefined),
    httpChallenge: () => undefined,
    subscribe: () => () => {},
  };
  const cfg = config({ listeners: [{ address: '127.0.0.1:0', tls: { cert: normal.certPath, key: normal.keyPath } }] });
  const tls = new ListenerTls(cfg.listeners[0]!.tls!, source, quiet);
  const server = createServer(tls.serverOptions(), (_req, res) => res.end('ok'));
  tls.attach(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    tls.close();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const hello = (ALPNProtocols: string[]) =>
    new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'site.test', ALPNProtocols, rejectUnauthorized: false }, () => resolve(s));
      s.on('error', reject);
    });
  const acme = await hello(['acme-tls/1']);
  assert.equal(acme.alpnProtocol, 'acme-tls/1');
  assert.equal(acme.getPeerCertificate().subject.CN, 'challenge');
  acme.destroy();
  const browser = await hello(['http/1.1']);
  assert.equal(browser.alpnProtocol, 'http/1.1');
  assert.equal(browser.getPeerCertificate().subject.CN, 'site.test');
  browser.destroy();
});

test('the ACME storage lock: one holder at a time; a stale lock is taken over', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-acme-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = new AcmeStore(dir);
  const b = new AcmeStore(dir);
  assert.equal(a.tryLock(), true);
  assert.equal(b.tryLock(), false, 'a second process sharing the directory must wait');
  a.unlock();
  assert.equal(b.tryLock(), true);
  // A holder that died 11 minutes ago: its lock is stale.
  const old = (Date.now() - 11 * 60_000) / 1000;
  utimesSync(join(dir, 'lock'), old, old);
  assert.equal(a.tryLock(), true);
  // b was only slow (e.g. a long order), not dead: releasing must not remove a's lock.
  b.unlock();
  assert.equal(b.tryLock(), false, "a stale holder's unlock leaves the new holder's lock in place");
  // A live holder refreshes its lock, so it never looks stale to the others.
  utimesSync(join(dir, 'lock'), old, old);
  a.touchLock();
  assert.equal(b.tryLock(), false, 'a refreshed lock is not taken over');
  a.unlock();
  assert.equal(b.tryLock(), true);
  b.unlock();
});

test('ACME storage: the account key and certificate keys are written 0600, the directory 0700', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'usher-acme-perm-')), 'storage');
  t.after(() => rmSync(dirname(dir), { recursive: true, force: true }));
  const s = new AcmeStore(dir);
  const c = certDir();
  t.after(() => c.remove());
  const site = c.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  const umask = process.umask(0);
  try {
    s.writeAccountKey('-----BEGIN PRIVATE KEY-----\n');
    s.writeCertificate('site.test', site.cert, site.key);
    // Rewritten over a leftover temporary file with loose permissions.
    writeFileSync(join(dir, 'certs', `site.test-key.pem.${process.pid}.tmp`), 'x', { mode: 0o644 });
    s.writeCertificate('site.test', site.cert, site.key);
  } finally {
    process.umask(umask);
  }
  assert.equal(statSync(join(dir, 'account-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'certs', 'site.test-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(s.readCertificate('site.test')?.names[0], 'site.test');
});

test('ACME failures are logged with the domain, attempt and next retry, and retried with doubling backoff', async (t) => {
  const storage = mkdtempSync(join(tmpdir(), 'usher-acme-fail-'));
  t.after(() => rmSync(storage, { recursive: true, force: true }));
  // A directory URL where nothing listens: every order fails at once.
  const dead = await freePort();
  const pki = certDir();
  t.after(() => pki.remove());
  const ca = pki.ca('acme-fail-ca');
  const site = pki.issue('other', { cn: 'other.test', sans: ['DNS:other.test'], ca });
  const u = await startUsher({
    log: { level: 'info' },
    listeners: [{ address: '127.0.0.1:0', tls: { certificates: [{ cert: site.certPath, key: site.keyPath }] } }],
    routes: [{ respond: { body: 'x' } }],
    acme: { domains: ['down.test'], directory: `http://127.0.0.1:${dead}/dir`, storage, retry: { min: '50ms', max: '150ms' } },
  });
  t.after(() => u.close());
  const failures = () => u.logs.filter((l) => l.msg === 'ACME: could not obtain a certificate; will retry');
  await waitFor(() => failures().length >= 3, 10_000, 'three failed attempts');
  const [a, b, c] = failures();
  assert.deepEqual([a!.domain, a!.attempt, a!.retry_in_ms], ['down.test', 1, 50]);
  assert.deepEqual([b!.attempt, b!.retry_in_ms], [2, 100]);
  assert.deepEqual([c!.attempt, c!.retry_in_ms], [3, 150], 'capped at retry.max');
  assert.match(String((a!.err as { message: string }).message), /no response from the ACME server/);
  assert.equal(u.usher.acme!.issued, 0);
  // Other names are served all along, by the same listener.
  const served = await httpsGet(u.usher.addresses()[0]!.port, { servername: 'other.test', ca: ca.cert });
  assert.equal(served.status, 200);
  assert.equal(served.body, 'x');
});

test('two processes sharing ACME storage: while another holds the lock nothing is ordered; its certificate is then picked up and served', async (t) => {
  const storage = mkdtempSync(join(tmpdir(), 'usher-acme-share-'));
  const certs = certDir();
  t.after(() => {
    rmSync(storage, { recursive: true, force: true });
    certs.remove();
  });
  const other = new AcmeStore(storage);
  assert.equal(other.tryLock(), true, 'the "other process" orders');
  const dead = await freePort();
  const u = await startUsher({
    log: { level: 'info' },
    listeners: [{ address: '127.0.0.1:0', tls: {} }],
    routes: [{ respond: { body: 'x' } }],
    acme: { domains: ['shared.test'], directory: `http://127.0.0.1:${dead}/dir`, storage, retry: { min: '50ms', max: '50ms' } },
  });
  t.after(() => u.close());
  const acme = u.usher.acme!;
  await waitFor(() => u.logs.some((l) => String(l.msg).startsWith('ACME: another usher process holds the storage lock')), 5000, 'the lock to be seen');
  assert.equal(acme.orders, 0);
  // The other process finishes: it stores the certificate and releases the lock.
  // Valid for longer than the 30-day renewal window, so it needs no order.
  const issued = certs.issue('shared', { cn: 'shared.test', sans: ['DNS:shared.test'], days: 90 });
  other.writeCertificate('shared.test', issued.cert, issued.key);
  other.unlock();
  await waitFor(() => acme.certificate('shared.test') !== undefined, 5000, 'the stored certificate');
  assert.equal(acme.orders, 0, 'picked up from storage, not ordered again');
  const s = await new Promise<TLSSocket>((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port: u.port, servername: 'shared.test', ca: issued.cert }, () => resolve(c));
    c.on('error', reject);
  });
  assert.equal(s.getPeerCertificate().subject.CN, 'shared.test');
  s.destroy();
});
