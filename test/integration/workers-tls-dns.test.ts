// Workers: TLS certificate files and DNS discovery reach every worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, status, until, yaml } from '../helpers/workers.js';
import { connect as tlsConnect } from 'node:tls';
import { certDir } from '../helpers/certs.js';
import { startDns } from '../helpers/dns.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

test('a TLS certificate file replaced on disk: every worker serves the new one', LIMIT, async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const first = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  const up = await startUpstream('app');
  t.after(() => up.close());
  const text = `listeners:\n  - { address: 127.0.0.1:0 }\n  - { address: 127.0.0.1:0, tls: { cert: ${JSON.stringify(first.certPath)}, key: ${JSON.stringify(first.keyPath)} } }\nadmin: { address: 127.0.0.1:0 }\nupstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nroutes: [{ upstream: app }]\n`;
  const s = await start(t, text);
  const tlsPort = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)![1]);
  const served = () =>
    new Promise<string>((resolve, reject) => {
      const c = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'site.test', rejectUnauthorized: false }, () => {
        resolve(c.getPeerCertificate().fingerprint256);
        c.destroy();
      });
      c.on('error', reject);
    });
  // Six new connections: both workers serve the first certificate.
  const before = new Set(await Promise.all([1, 2, 3, 4, 5, 6].map(served)));
  assert.equal(before.size, 1);
  const second = certs.issue('site', { cn: 'site.test', sans: ['DNS:site.test'] });
  assert.equal(second.certPath, first.certPath);
  await until('both workers to serve the new certificate', async () => {
    const now = new Set(await Promise.all([1, 2, 3, 4, 5, 6].map(served)));
    return now.size === 1 && !now.has([...before][0]!) ? true : undefined;
  });
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.connections ?? 0) > 0), `both workers answered handshakes: ${JSON.stringify(st.workers)}`);
});

test('DNS discovery runs in the primary: a changed answer reaches every worker', LIMIT, async (t) => {
  const on = async (host: string, port: number, name: string) => {
    const server = createServer((req, res) => {
      req.resume();
      res.end(name);
    });
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
    return (server.address() as AddressInfo).port;
  };
  const port = await on('127.0.0.1', 0, 'one');
  await on('127.0.0.2', port, 'two');
  const dns = await startDns({ 'api.test': ['127.0.0.1'] });
  t.after(() => dns.close());
  const s = await start(t, yaml(JSON.stringify(`http://api.test:${port}`), `    dns: { refresh: 200ms, family: ipv4, servers: [${JSON.stringify(dns.server)}] }\nroutes: [{ upstream: app }]\nlog: { level: info }\n`));
  const bodies = async () => new Set((await Promise.all([1, 2, 3, 4, 5, 6].map(() => request(`${s.url}/x`)))).map((r) => r.body));
  await until('both workers on the first answer', async () => ((await bodies()).has('one') && (await bodies()).size === 1 ? true : undefined));
  dns.records.set('api.test', ['127.0.0.2']);
  await until('both workers on the new answer', async () => {
    const b = await bodies();
    return b.size === 1 && b.has('two') ? true : undefined;
  });
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.requests ?? 0) > 0));
  // The workers apply what the primary resolved; only the primary logs a DNS change of its own cluster first.
  const changes = s.cli.messages(/^upstream servers changed \(DNS\)$/);
  assert.ok(changes.some((l) => l.worker === 'primary'), JSON.stringify(changes));
});
