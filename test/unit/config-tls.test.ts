import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/index.js';
import { certDir } from '../helpers/certs.js';
import { brief } from '../helpers/issues.js';


test('TLS config errors point at the key: missing files, a cert without its key, a mismatched key, redirect on TLS, no certificate', (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  certs.issue('a', { cn: 'a.test', sans: ['DNS:a.test'] });
  certs.issue('b', { cn: 'b.test', sans: ['DNS:b.test'] });
  const file = join(certs.dir, 'usher.yaml');
  const text = [
    'listeners:',
    '  - address: 127.0.0.1:8443',
    '    tls:',
    '      cert: nope.pem',
    '      key: a-key.pem',
    '  - address: 127.0.0.1:8444',
    '    tls: { cert: a.pem }',
    '  - address: 127.0.0.1:8445',
    '    tls: { cert: a.pem, key: b-key.pem }',
    '    redirect_https: true',
    '  - address: 127.0.0.1:8446',
    '    tls: {}',
    '',
  ].join('\n');
  const r = loadConfigText(text, file, {});
  assert.equal(r.ok, false);
  const errs = r.ok ? [] : brief(r.errors);
  assert.deepEqual(errs[0], [4, 13, 'listeners[0].tls.cert', 'cannot read "nope.pem": ENOENT']);
  assert.deepEqual(errs[1], [7, 18, 'listeners[1].tls.cert', '"cert" needs "key" too', 'add the private key file of the default certificate']);
  assert.equal(errs[2]?.[2], 'listeners[2].tls.cert');
  assert.match(errs[2]?.[3] ?? '', /^cannot use this certificate and key: .*key values mismatch/);
  assert.deepEqual(errs[3], [10, 21, 'listeners[2].redirect_https', 'redirect_https applies to plain listeners; this one already speaks TLS', 'remove it']);
  assert.deepEqual(errs[4], [12, 10, 'listeners[3].tls', 'a TLS listener needs a certificate', 'add "cert" and "key", a "certificates" list, or a top-level "acme" section']);
  assert.equal(errs.length, 5);
});

test('upstream TLS: insecure_skip_verify is a loud warning; tls without https servers is a warning', () => {
  const text = [
    'listeners: [{ address: 8080 }]',
    'upstreams:',
    '  a: { servers: [https://127.0.0.1:9443], tls: { insecure_skip_verify: true } }',
    '  b: { servers: [http://127.0.0.1:9080], tls: { servername: b.test } }',
    'routes: [{ match: { path: /a }, upstream: a }, { upstream: b }]',
    '',
  ].join('\n');
  const r = loadConfigText(text, 'usher.yaml', {});
  assert.equal(r.ok, true);
  assert.deepEqual(brief(r.warnings), [
    [3, 72, 'upstreams.a.tls.insecure_skip_verify', 'certificate verification is OFF for upstream "a": anyone on the network path can impersonate its servers', 'give the server\'s CA in "ca" instead'],
    [4, 47, 'upstreams.b.tls', 'upstream "b" has no https:// server, so its "tls" settings are not used'],
  ]);
  if (r.ok) assert.equal(r.config.upstreams.a?.tls?.insecure_skip_verify, true);
});

test('acme: a TLS listener may have no certificate of its own; acme without a TLS listener is a warning', () => {
  const ok = loadConfigText('listeners: [{ address: 8443, tls: {} }]\nacme: { domains: [Example.COM], storage: /var/lib/usher/acme }\n', 'usher.yaml', {});
  assert.equal(ok.ok, true);
  if (ok.ok) {
    assert.deepEqual(ok.warnings, []);
    assert.deepEqual(ok.config.acme?.domains, ['example.com']);
    assert.deepEqual(ok.config.acme?.challenges, ['http-01', 'tls-alpn-01']);
    assert.equal(ok.config.acme?.directory, 'https://acme-v02.api.letsencrypt.org/directory');
  }
  const warn = loadConfigText('listeners: [{ address: 8080 }]\nacme: { domains: [example.com] }\n', 'usher.yaml', {});
  assert.equal(warn.ok, true);
  assert.deepEqual(brief(warn.warnings), [[2, 7, 'acme', 'no listener has "tls": the certificates obtained by ACME are not served', 'add a listener with "tls: {}"']]);
  const wild = loadConfigText('listeners: [{ address: 8443, tls: {} }]\nacme: { domains: ["*.example.com"] }\n', 'usher.yaml', {});
  assert.equal(wild.ok, false);
  if (!wild.ok) assert.match(wild.errors[0]!.message, /no wildcard/);
});

test('acme.storage: a directory (relative to the file) or Redis with the rate-limit stores\' connection shape', () => {
  const dir = loadConfigText('listeners: [{ address: 8443, tls: {} }]\nacme: { domains: [a.test], storage: state/acme }\n', '/etc/usher/usher.yaml', {});
  assert.equal(dir.ok, true);
  if (dir.ok) assert.equal(dir.config.acme?.storage, '/etc/usher/state/acme');
  const text = 'listeners: [{ address: 8443, tls: {} }]\nacme:\n  domains: [a.test]\n  storage:\n    redis: { url: "redis://10.0.0.5:6379/2", encryption_key: "${ACME_KEY}" }\n';
  const redis = loadConfigText(text, 'usher.yaml', { ACME_KEY: 'sixteen or more characters' });
  assert.equal(redis.ok, true, JSON.stringify(!redis.ok && redis.errors));
  if (redis.ok) {
    assert.deepEqual(redis.config.acme?.storage, {
      redis: { url: 'redis://10.0.0.5:6379/2', options: {}, cluster_options: {}, prefix: 'usher:acme:', timeout: 2000, encryption_key: 'sixteen or more characters' },
    });
  }
  const both = loadConfigText('listeners: [{ address: 8443, tls: {} }]\nacme:\n  domains: [a.test]\n  storage: { redis: { url: "redis://x", cluster: ["a:1"] } }\n', 'usher.yaml', {});
  assert.equal(both.ok, false);
  if (!both.ok) assert.deepEqual(brief(both.errors).map((e) => e.slice(2, 4)), [['acme.storage.redis', 'a Redis store takes one of "url", "sentinel" or "cluster", not "url" and "cluster"']]);
  const short = loadConfigText('listeners: [{ address: 8443, tls: {} }]\nacme:\n  domains: [a.test]\n  storage: { redis: { encryption_key: short } }\n', 'usher.yaml', {});
  assert.equal(short.ok, false);
  if (!short.ok) assert.deepEqual(brief(short.errors).map((e) => e.slice(2, 4)), [['acme.storage.redis.encryption_key', 'expected a string of at least 16 characters, got 5 characters']]);
});
