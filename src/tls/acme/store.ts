// The ACME storage directory: the account key, one certificate + key per domain, and a lock
// file so that several usher processes sharing the directory do not order at the same time.
//
//   <storage>/account-key.pem     the ACME account key (RFC 8555 §7.3), created once, 0600
//   <storage>/certs/<domain>.pem  the certificate chain, <domain>-key.pem its key (0600)
//   <storage>/lock                held (O_EXCL) by the process that is ordering
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadCertificate, type LoadedCertificate } from '../certificate.js';
import type { AcmeStorage } from './storage.js';

/** A lock not refreshed for this long is from a process that died mid-order: taken over. */
const STALE_LOCK_MS = 10 * 60_000;
/** How often a holder refreshes its lock (touchLock), well inside STALE_LOCK_MS. */
export const LOCK_REFRESH_MS = 60_000;

export class AcmeStore implements AcmeStorage {
  readonly dir: string;
  readonly describe: Record<string, unknown>;
  readonly lockRefreshMs = LOCK_REFRESH_MS;
  /** Written into the lock: only the holder that wrote it removes or refreshes it. */
  private readonly token = `${process.pid} ${randomBytes(8).toString('hex')}`;

  constructor(dir: string) {
    this.dir = dir;
    this.describe = { storage: dir };
    mkdirSync(join(dir, 'certs'), { recursive: true, mode: 0o700 });
    // mkdir's mode is only for directories it creates (and is masked by the umask).
    chmodSync(dir, 0o700);
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
        writeSync(fd, `${this.token} ${new Date().toISOString()}\n`);
        closeSync(fd);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!isStale(path) || !this.breakStale(path)) return false;
      }
    }
    return false;
  }

  /**
   * Removes a stale lock so that it can be taken. Rename is atomic, so of two processes that
   * both saw it stale one moves it aside; the other may then move the *winner's fresh* lock:
   * it sees that (the moved file is not stale) and puts it back with link (fails if a lock
   * exists) instead of also taking the lock.
   */
  private breakStale(path: string): boolean {
    const aside = `${path}.${this.token.replace(' ', '.')}.stale`;
    try {
      renameSync(path, aside);
    } catch {
      return true; // gone already: try to create it again
    }
    const stale = isStale(aside);
    if (!stale) {
      try {
        linkSync(aside, path);
      } catch {
        // a third process created one meanwhile; the moved one's holder will see it is not theirs
      }
    }
    try {
      unlinkSync(aside);
    } catch {
      // nothing to clean
    }
    return stale;
  }

  /** The holder's heartbeat during a long order: a refreshed lock never looks stale. */
  touchLock(): void {
    const path = join(this.dir, 'lock');
    if (!this.holds(path)) return;
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch {
      // taken over meanwhile
    }
  }

  /** Releases the lock if it is still this store's (a slow holder's lock may have been taken over). */
  unlock(): void {
    const path = join(this.dir, 'lock');
    if (!this.holds(path)) return;
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }

  private holds(path: string): boolean {
    return readOptional(path)?.startsWith(`${this.token} `) === true;
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
  // 'w' with a mode only sets it on creation: a leftover temporary file keeps its own, so it is
  // replaced rather than reused (keys must never be readable by others).
  try {
    unlinkSync(tmp);
  } catch {
    // none left over
  }
  writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}
