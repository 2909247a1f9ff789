// TLS through the real CLI process: an HTTPS listener from a config file with relative
// certificate paths, and SIGHUP re-reading a certificate file that no watcher sees.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { Cli, tempDir, writeFile } from '../helpers/cli.js';
import { certDir, httpsGet } from '../helpers/certs.js';

test('usher serve: HTTPS from a config file; SIGHUP reloads a changed certificate', { timeout: 120_000 }, async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const ca = certs.ca('cli-ca');
  const one = certs.issue('one', { cn: 'site.test', sans: ['DNS:site.test'], ca });
  const two = certs.issue('two', { cn: 'site.test', sans: ['DNS:site.test'], ca });
  const dir = tempDir(t);
  // The configured paths are symlinks into a subdirectory the certificate watcher does not
  // watch: editing the targets can only be picked up by the signal.
  mkdirSync(join(dir, 'real'));
  copyFileSync(one.certPath, join(dir, 'real', 'site.pem'));
  copyFileSync(one.keyPath, join(dir, 'real', 'site-key.pem'));
  symlinkSync(join(dir, 'real', 'site.pem'), join(dir, 'site.pem'));
  symlinkSync(join(dir, 'real', 'site-key.pem'), join(dir, 'site-key.pem'));
  const file = writeFile(
    join(dir, 'usher.yaml'),
    'listeners:\n  - address: 127.0.0.1:0\n    tls: { cert: site.pem, key: site-key.pem, hsts: {} }\nroutes:\n  - respond: { body: "over tls\\n" }\n',
  );
  const cli = new Cli(['serve', '--config', file]);
  t.after(() => cli.kill());
  const port = await cli.until(() => {
    const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(cli.stderr);
    return m ? Number(m[1]) : undefined;
  }, 'the "listening on https://" banner line');

  const r = await httpsGet(port, { servername: 'site.test', ca: ca.cert });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'over tls\n');
  assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
  assert.equal(r.peer.fingerprint256, new X509Certificate(one.cert).fingerprint256);

  copyFileSync(two.keyPath, join(dir, 'real', 'site-key.pem'));
  copyFileSync(two.certPath, join(dir, 'real', 'site.pem'));
  cli.signal('SIGHUP');
  await cli.until(() => cli.messages(/^config reloaded/).length > 0, 'the "config reloaded" log line');
  const s = await new Promise<TLSSocket>((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port, servername: 'site.test', ca: ca.cert }, () => resolve(c));
    c.on('error', reject);
  });
  assert.equal(s.getPeerCertificate().fingerprint256, new X509Certificate(two.cert).fingerprint256);
  s.destroy();
});
