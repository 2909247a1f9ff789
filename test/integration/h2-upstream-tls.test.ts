import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { binPath, repoRoot, tempDir, writeFile } from '../helpers/cli.js';
import { CERT_FILE, h2request, h2session, KEY_FILE } from '../helpers/h2.js';
import { waitFor } from '../helpers/usher.js';

// protocol: h2 verifies the upstream's certificate (system roots): the test's self-signed one is
// made trusted the way an operator could, with NODE_EXTRA_CA_CERTS, in a real usher process.
test('protocol: h2 — HTTP/2 over TLS (ALPN) to the upstream, certificate verified; h2c downstream', async (t) => {
  const seen: { version: string; alpn: unknown; authority: unknown }[] = [];
  const up = createSecureServer({ cert: readFileSync(CERT_FILE), key: readFileSync(KEY_FILE) }, (req, res) => {
    seen.push({ version: req.httpVersion, alpn: (req.socket as unknown as { alpnProtocol: unknown }).alpnProtocol, authority: req.headers[':authority'] });
    req.resume();
    res.end(`v${req.httpVersion}`);
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const dir = tempDir(t);
  const file = writeFile(
    join(dir, 'usher.yaml'),
    `listeners: [{ address: "127.0.0.1:0", http2: {} }]
upstreams:
  secure: { protocol: h2, servers: ["https://127.0.0.1:${(up.address() as AddressInfo).port}"] }
routes: [{ upstream: secure }]
`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: CERT_FILE };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [binPath, 'serve', '--config', file, '--workers', '1'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // One hook, in order: usher's pooled session keeps the upstream server from closing.
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
    await new Promise<void>((resolve) => up.close(() => resolve()));
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.resume();
  await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(stderr), 10_000, 'the listening banner');
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
  const session = await h2session(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  // undici takes the TLS servername from Host, and Host is preserved: keep it a name the
  // upstream's certificate covers (upstream SNI/servername settings belong to the TLS work).
  const r = await h2request(session, { ':path': '/tls-up', ':authority': '127.0.0.1' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'v2.0');
  assert.deepEqual(seen[0], { version: '2.0', alpn: 'h2', authority: '127.0.0.1' });
  session.close();
});
