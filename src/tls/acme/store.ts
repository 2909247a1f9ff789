// The ACME storage directory: the account key, one certificate + key per domain, and a lock
// file so that several usher processes sharing the directory do not order at the same time.
//
//   <storage>/account-key.pem     the ACME account key (RFC 8555 §7.3), created once, 0600
//   <storage>/certs/<domain>.pem  the certificate chain, <domain>-key.pem its key (0600)
//   <storage>/lock                held (O_EXCL) by the process that is ordering
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadCertificate, type LoadedCertificate } from '../certificate.js';

/** A lock older than this is from a process that died mid-order: taken over. */
const STALE_LOCK_MS = 10 * 60_000;

export class AcmeStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'certs'), { recursive: true, mode: 0o700 });
  }

  readAccountKey(): string | undefined {
    return readOptional(join(this.dir, 'account-key.pem'));
  }

  writeAccountKey(pem: string): void {
    writeAtomic(join(this.dir, 'account-key.pem'), pem);
  }

  readCertificate(domain: string): LoadedCertificate | undefined {
    const cert = readOptional(join(this.dir, 'certs', `${domain}.pem`));
    const key = readOptional(join(this.dir, 'certs', `${domain}-key.pem`));
    if (cert === undefined || key === undefined) return undefined;
    try {
      return loadCertificate(cert, key, [domain]);
    } catch {
      return undefined;
    }
  }

  /** Key first, then the certificate, each by rename: a reader never sees a half-written file. */
  writeCertificate(domain: string, cert: string, key: string): void {
    writeAtomic(join(this.dir, 'certs', `${domain}-key.pem`), key);
    writeAtomic(join(this.dir, 'certs', `${domain}.pem`), cert);
  }

  /** Takes the lock, or returns false when another process holds it. */
  tryLock(): boolean {
    const path = join(this.dir, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, `${process.pid} ${new Date().toISOString()}\n`);
        closeSync(fd);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!isStale(path)) return false;
        try {
          unlinkSync(path);
        } catch {
          // another process took it over first
        }
      }
    }
    return false;
  }

  unlock(): void {
    try {
      unlinkSync(join(this.dir, 'lock'));
    } catch {
      // already gone
    }
  }
}

function isStale(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > STALE_LOCK_MS;
  } catch {
    return true;
  }
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}
