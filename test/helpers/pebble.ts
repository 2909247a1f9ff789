// Pebble, Let's Encrypt's test ACME server (Debian package `pebble`), started on loopback for
// the ACME tests, with pebble-challtestsrv answering DNS so that every name is 127.0.0.1.
// Pebble validates HTTP-01 on `httpPort` and TLS-ALPN-01 on `tlsPort`: usher's listeners.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { certDir, type CertDir } from './certs.js';

export interface Pebble {
  directory: string;
  /** CA file trusting pebble's own HTTPS listener. */
  caPath: string;
  httpPort: number;
  tlsPort: number;
  /** The per-run root that issued certificates chain to. */
  root(): Promise<string>;
  /** What pebble and pebble-challtestsrv printed so far (pebble logs each order it creates). */
  output(): string;
  close(): Promise<void>;
}

export function pebbleInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv'], { stdio: 'ignore' }).status === 0;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
    }).on('error', reject);
  });
}

export async function startPebble(): Promise<Pebble> {
  const certs: CertDir = certDir();
  const ca = certs.ca('pebble-test-ca');
  const tlsCert = certs.issue('pebble', { cn: 'localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'], ca });
  const [listen, mgmt, dns, dnsMgmt, httpPort, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const configPath = join(certs.dir, 'pebble-config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: tlsCert.certPath,
        privateKey: tlsCert.keyPath,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    children.push(child);
  };
  run('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']);
  // NOSLEEP: no random validation delay; NONCEREJECT 0: no random badNonce; AUTHZREUSE 0: every order validates.
  run('pebble', ['-config', configPath, '-dnsserver', `127.0.0.1:${dns}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' });
  const directory = `https://127.0.0.1:${listen}/dir`;
  const close = async () => {
    for (const c of children) c.kill('SIGTERM');
    // A child that ignores SIGTERM must not hang the test run: SIGKILL after 3 s.
    const kill = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 3000);
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    clearTimeout(kill);
    certs.remove();
  };
  const start = Date.now();
  for (;;) {
    try {
      await fetchText(directory, ca.cert);
      break;
    } catch (err) {
      if (Date.now() - start > 15_000) {
        await close();
        throw new Error(`pebble did not start: ${(err as Error).message}\n${output.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { directory, caPath: ca.certPath, httpPort, tlsPort, root: () => fetchText(`https://127.0.0.1:${mgmt}/roots/0`, ca.cert), output: () => output.join(''), close };
}
