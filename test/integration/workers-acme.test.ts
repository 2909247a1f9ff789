// ACME with `workers: 2` (issue #16 pt 1): the primary orders once against Pebble; the CA's
// validation connections reach whichever worker round-robin picks, and each answers the
// challenge the primary sent it (HTTP-01 on the plain listener, TLS-ALPN-01 on the TLS one);
// then every worker serves the certificate.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { pebbleInstalled, startPebble } from '../helpers/pebble.js';
import { startUpstream } from '../helpers/upstream.js';

if (!pebbleInstalled()) throw new Error('pebble is not installed: `node scripts/system-deps.js` installs it or prints the command (npm test runs it first)');

function fingerprint(port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}

for (const challenge of ['http-01', 'tls-alpn-01'] as const) {
  test(`${challenge} with two workers: one order, every worker answers the challenge and serves the certificate`, { timeout: 180_000 }, async (t) => {
    const pebble = await startPebble();
    t.after(() => pebble.close());
    const up = await startUpstream('app');
    t.after(() => up.close());
    const dir = tempDir(t);
    const domain = 'w.acme.test';
    const file = writeFile(
      join(dir, 'usher.yaml'),
      `listeners:\n  - { address: 127.0.0.1:${pebble.httpPort} }\n  - { address: 127.0.0.1:${pebble.tlsPort}, tls: {} }\nadmin: { address: 127.0.0.1:0 }\n` +
        `upstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nroutes: [{ upstream: app }]\nlog: { level: info }\n` +
        `acme:\n  domains: [${domain}]\n  challenges: [${challenge}]\n  directory: ${JSON.stringify(pebble.directory)}\n  ca: ${JSON.stringify(pebble.caPath)}\n  storage: ${JSON.stringify(join(dir, 'acme'))}\n  retry: { min: 200ms, max: 2s }\n  check_interval: 1h\n`,
    );
    const s = await serve(t, ['--config', file, '--workers', '2']);
    await s.cli.until(() => s.cli.messages(/^ACME: certificate obtained$/).length > 0 || s.cli.logs().some((l) => l.level === 50), 'the certificate', 90_000);
    assert.deepEqual(s.cli.logs().filter((l) => l.level === 50), []);
    assert.equal(s.cli.messages(/^ACME: ordering a certificate$/).length, 1, 'one order, by the primary');
    assert.ok(s.cli.messages(/^ACME: /).every((l) => l.worker === 'primary'));
    const root = await pebble.root();
    // New connections until both workers took some (cluster alternates; SO_REUSEPORT, on a
    // fixed port with Node >= 22.12, spreads them by a hash: 9 in a row on one was seen): each
    // serves the one certificate.
    const admin = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.cli.stderr)![1]!;
    const seen = new Set<string>();
    let st: { workers: { connections: number }[] } = { workers: [] };
    for (let i = 0; i < 60; i++) {
      seen.add(await fingerprint(pebble.tlsPort, domain, root));
      if (i < 5) continue;
      st = JSON.parse((await request(`${admin}/status`)).body) as typeof st;
      if (st.workers.every((w) => w.connections > 0)) break;
    }
    assert.equal(seen.size, 1);
    assert.ok(st.workers.every((w) => w.connections > 0), JSON.stringify(st.workers));
    // GET /certificates: the ACME state is the primary's, the listener serving it a worker's.
    const view = JSON.parse((await request(`${admin}/certificates`)).body) as { certificates: { names: string[]; fingerprint_sha256: string; source: { type: string; domain: string }; listeners: string[] }[]; acme_pending: unknown[] };
    assert.equal(view.certificates.length, 1, JSON.stringify(view));
    const c = view.certificates[0]!;
    assert.deepEqual([c.names, c.source.type, c.source.domain, c.listeners], [[domain], 'acme', domain, [`127.0.0.1:${pebble.tlsPort}`]]);
    assert.equal(c.fingerprint_sha256, [...seen][0]);
    assert.deepEqual(view.acme_pending, []);
  });
}
