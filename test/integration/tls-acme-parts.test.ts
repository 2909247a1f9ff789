// The parts of ACME that do not need a CA: the TLS-ALPN-01 certificate goes only to clients
// that ask for acme-tls/1, and the storage lock lets one process order at a time.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { config } from '../helpers/usher.js';
import { certDir } from '../helpers/certs.js';
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
  a.unlock();
});
