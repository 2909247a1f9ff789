// Test certificates, made at test time with the openssl CLI into a temp dir (no keys in git):
// a CA, server certificates for names, client certificates for mTLS.
import { execFileSync } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface CertDir {
  dir: string;
  ca(name: string): TestCert;
  /** A certificate signed by `ca` (or self-signed without one). `sans`: "DNS:a.test", "IP:127.0.0.1". */
  issue(name: string, opts: { cn: string; sans?: string[]; ca?: TestCert; client?: boolean; days?: number; keyType?: KeyType }): TestCert;
  remove(): void;
}

/** `ec`: P-256 (the default), `rsa`: 2048 bits, `ed25519`. */
export type KeyType = 'ec' | 'rsa' | 'ed25519';

const newKey = (type: KeyType | undefined): string[] =>
  type === 'rsa' ? ['-newkey', 'rsa:2048'] : type === 'ed25519' ? ['-newkey', 'ed25519'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function certDir(): CertDir {
  const dir = mkdtempSync(join(tmpdir(), 'usher-certs-'));
  let serial = 1;
  const read = (name: string): TestCert => {
    const certPath = join(dir, `${name}.pem`);
    const keyPath = join(dir, `${name}-key.pem`);
    return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  };
  return {
    dir,
    ca(name) {
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${name}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-keyout', join(dir, `${name}-key.pem`), '-out', join(dir, `${name}.pem`)]);
      return read(name);
    },
    issue(name, opts) {
      const keyPath = join(dir, `${name}-key.pem`);
      const certPath = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      const lines = [
        'basicConstraints=CA:FALSE',
        `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
        ...(opts.sans && opts.sans.length > 0 ? [`subjectAltName=${opts.sans.join(',')}`] : []),
      ];
      writeFileSync(ext, `${lines.join('\n')}\n`);
      const days = String(opts.days ?? 30);
      if (opts.ca === undefined) {
        openssl(['req', '-x509', ...newKey(opts.keyType), '-nodes', '-days', days, '-subj', `/CN=${opts.cn}`,
          '-extensions', 'v3', '-config', writeConfig(dir, name, lines), '-keyout', keyPath, '-out', certPath]);
      } else {
        const csr = join(dir, `${name}.csr`);
        openssl(['req', '-new', ...newKey(opts.keyType), '-nodes', '-subj', `/CN=${opts.cn}`, '-keyout', keyPath, '-out', csr]);
        openssl(['x509', '-req', '-in', csr, '-CA', opts.ca.certPath, '-CAkey', opts.ca.keyPath, '-set_serial', String(1000 + serial++),
          '-days', days, '-extfile', ext, '-out', certPath]);
      }
      return read(name);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function writeConfig(dir: string, name: string, lines: string[]): string {
  const path = join(dir, `${name}.cnf`);
  writeFileSync(path, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${lines.join('\n')}\n`);
  return path;
}


export interface TlsReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  peer: PeerCertificate;
  protocol: string | null;
  reused: boolean;
}

/** One HTTPS request to 127.0.0.1:port, verifying the server against `ca` for `servername`. */
export function httpsGet(
  port: number,
  opts: { servername?: string; ca?: string; cert?: string; key?: string; path?: string; headers?: Record<string, string>; agent?: HttpsAgent; host?: string },
): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        servername: opts.servername,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        headers: { host: opts.host ?? opts.servername ?? '127.0.0.1', ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        const protocol = socket.getProtocol();
        const reused = socket.isSessionReused();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), peer, protocol, reused }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
