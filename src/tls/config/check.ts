// Semantic checks for the TLS parts of a config (schema.ts): pairs that go together, files
// that must be readable, certificates that must load with their keys. Like check.ts, it reads
// the data defensively: the schema has already reported wrong shapes.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { isRec, list, type Rec } from '../../config/check-kit.js';
import type { Issues, Segment } from '../../config/issues.js';
import { checkRedisConnection } from '../../util/redis.js';
import { keyTypeOf, mixedKeyTypeProblem } from '../key-types.js';

export function checkTls(data: Rec, issues: Issues, baseDir: string | undefined): void {
  const error = (path: Segment[], message: string, hint?: string) => {
    if (!issues.hasErrorAt(path)) issues.error(path, message, { hint });
  };
  const path = (p: string) => (baseDir === undefined || isAbsolute(p) ? p : resolve(baseDir, p));
  const readable = (at: Segment[], p: unknown): string | undefined => {
    if (typeof p !== 'string' || p === '') return undefined;
    try {
      return readFileSync(path(p), 'utf8');
    } catch (err) {
      error(at, `cannot read ${JSON.stringify(p)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  };
  /** The certificate's key type when it loads with its key. */
  const pair = (at: Segment[], holder: Rec, what: string): string | undefined => {
    const hasCert = holder.cert !== undefined;
    const hasKey = holder.key !== undefined;
    if (hasCert !== hasKey) {
      error([...at, hasCert ? 'cert' : 'key'], `"${hasCert ? 'cert' : 'key'}" needs "${hasCert ? 'key' : 'cert'}" too`, `add the ${hasCert ? 'private key' : 'certificate'} file of ${what}`);
      return;
    }
    const cert = readable([...at, 'cert'], holder.cert);
    const key = readable([...at, 'key'], holder.key);
    if (cert === undefined || key === undefined) return;
    try {
      createSecureContext({ cert, key });
      return keyTypeOf(cert);
    } catch (err) {
      error([...at, 'cert'], `cannot use this certificate and key: ${(err as Error).message}`, 'the files must be PEM, the key must belong to the first certificate');
      return undefined;
    }
  };
  const hasAcme = isRec(data.acme);
  let tlsListeners = 0;
  list(data.listeners).forEach((l, i) => {
    if (!isRec(l)) return;
    const at: Segment[] = ['listeners', i];
    if (isRec(l.tls)) {
      tlsListeners++;
      const t = l.tls;
      let dfltType = pair([...at, 'tls'], t, 'the default certificate');
      list(t.certificates).forEach((c, j) => {
        if (!isRec(c)) return;
        const cAt: Segment[] = [...at, 'tls', 'certificates', j];
        const type = pair(cAt, c, 'this certificate');
        // Without "cert", the first certificate listed is the default (listener-tls.ts).
        if (t.cert === undefined && j === 0) dfltType = type;
        const problem = dfltType === undefined || type === undefined ? undefined : mixedKeyTypeProblem(dfltType, type);
        if (problem !== undefined) error([...cAt, 'cert'], problem, 'use an ECDSA or RSA key for this name, or a default certificate of the same key type');
      });
      if (t.cert === undefined && list(t.certificates).length === 0 && !hasAcme) {
        error([...at, 'tls'], 'a TLS listener needs a certificate', 'add "cert" and "key", a "certificates" list, or a top-level "acme" section');
      }
      if (isRec(t.client_auth)) readable([...at, 'tls', 'client_auth', 'ca'], t.client_auth.ca);
      if (l.redirect_https !== undefined && l.redirect_https !== false) {
        error([...at, 'redirect_https'], 'redirect_https applies to plain listeners; this one already speaks TLS', 'remove it');
      }
    }
  });
  if (isRec(data.upstreams)) {
    for (const [name, up] of Object.entries(data.upstreams)) {
      if (!isRec(up) || !isRec(up.tls)) continue;
      const at: Segment[] = ['upstreams', name, 'tls'];
      pair(at, up.tls, 'the client certificate');
      readable([...at, 'ca'], up.tls.ca);
      if (up.tls.insecure_skip_verify === true) {
        issues.warning([...at, 'insecure_skip_verify'], `certificate verification is OFF for upstream "${name}": anyone on the network path can impersonate its servers`, {
          hint: 'give the server\'s CA in "ca" instead',
        });
      }
      const https = list(up.servers).some((s) => {
        const url = typeof s === 'string' ? s : isRec(s) ? s.url : undefined;
        return typeof url === 'string' && url.toLowerCase().startsWith('https:');
      });
      if (!https) issues.warning(at, `upstream "${name}" has no https:// server, so its "tls" settings are not used`);
    }
  }
  if (hasAcme) {
    const acme = data.acme as Rec;
    readable(['acme', 'ca'], acme.ca);
    if (isRec(acme.storage)) checkRedisConnection(acme.storage.redis, ['acme', 'storage', 'redis'], error);
    if (tlsListeners === 0) issues.warning(['acme'], 'no listener has "tls": the certificates obtained by ACME are not served', { hint: 'add a listener with "tls: {}"' });
  }
}
