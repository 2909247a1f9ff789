// Normalizes the TLS parts of a valid config (schema.ts) into the shapes of types.ts.
import type { Static } from '@sinclair/typebox';
import { parseDuration } from '../../config/units.js';
import { TLS_DEFAULTS, type Acme, type ListenerTls, type RedirectHttps, type UpstreamTls } from './schema.js';
import { normalizeRedisConnection } from '../../util/redis.js';
import type { AcmeConfig, AcmeRedisConfig, ListenerTlsConfig, UpstreamTlsConfig } from './types.js';

type FilePath = (p: string) => string;

const D = TLS_DEFAULTS;

export function normalizeListenerTls(t: Static<typeof ListenerTls>, filePath: FilePath): ListenerTlsConfig {
  const out: ListenerTlsConfig = {
    certificates: (t.certificates ?? []).map((c) => ({ cert: filePath(c.cert), key: filePath(c.key), names: (c.names ?? []).map((n) => n.toLowerCase()) })),
    min_version: t.min_version ?? D.listener.min_version,
    ciphers: t.ciphers ?? D.listener.ciphers,
    session_tickets: t.session_tickets ?? D.listener.session_tickets,
    ticket_key_rotation: parseDuration(t.ticket_key_rotation ?? D.listener.ticket_key_rotation),
    hsts: t.hsts === undefined ? null : hstsValue(t.hsts),
    client_auth: t.client_auth === undefined ? null : { mode: t.client_auth.mode ?? D.listener.client_auth.mode, ca: filePath(t.client_auth.ca) },
  };
  if (t.cert !== undefined && t.key !== undefined) out.default = { cert: filePath(t.cert), key: filePath(t.key), names: [] };
  return out;
}

/** RFC 6797 §6.1 Strict-Transport-Security directives. */
function hstsValue(h: NonNullable<Static<typeof ListenerTls>['hsts']>): string {
  let v = `max-age=${h.max_age ?? D.listener.hsts.max_age}`;
  if (h.include_subdomains ?? D.listener.hsts.include_subdomains) v += '; includeSubDomains';
  if (h.preload ?? D.listener.hsts.preload) v += '; preload';
  return v;
}

/** `redirect_https`: true → 443, a number → that port, false/absent → none. */
export function redirectPort(r: Static<typeof RedirectHttps> | undefined): number | undefined {
  if (r === undefined || r === false) return undefined;
  return r === true ? 443 : r;
}

export function normalizeUpstreamTls(t: Static<typeof UpstreamTls>, filePath: FilePath): UpstreamTlsConfig {
  const out: UpstreamTlsConfig = { insecure_skip_verify: t.insecure_skip_verify ?? D.upstream.insecure_skip_verify };
  if (t.ca !== undefined) out.ca = filePath(t.ca);
  if (t.servername !== undefined) out.servername = t.servername.toLowerCase();
  if (t.cert !== undefined) out.cert = filePath(t.cert);
  if (t.key !== undefined) out.key = filePath(t.key);
  return out;
}

export function normalizeAcme(a: Static<typeof Acme>, filePath: FilePath): AcmeConfig {
  const out: AcmeConfig = {
    domains: [...new Set(a.domains.map((d) => d.toLowerCase()))],
    directory: a.directory ?? D.acme.directory,
    storage: typeof a.storage === 'object' ? { redis: normalizeAcmeRedis(a.storage.redis) } : filePath(a.storage ?? D.acme.storage),
    challenges: [...new Set(a.challenges ?? D.acme.challenges)],
    renew_before_days: a.renew_before_days ?? D.acme.renew_before_days,
    check_interval: parseDuration(a.check_interval ?? D.acme.check_interval),
    retry: { min: parseDuration(a.retry?.min ?? D.acme.retry.min), max: parseDuration(a.retry?.max ?? D.acme.retry.max) },
  };
  if (a.email !== undefined) out.email = a.email;
  if (a.ca !== undefined) out.ca = filePath(a.ca);
  return out;
}

function normalizeAcmeRedis(r: Extract<NonNullable<Static<typeof Acme>['storage']>, object>['redis']): AcmeRedisConfig {
  const out: AcmeRedisConfig = { ...normalizeRedisConnection(r), prefix: r.prefix ?? D.acme.redis.prefix, timeout: parseDuration(r.timeout ?? D.acme.redis.timeout) };
  if (r.encryption_key !== undefined) out.encryption_key = r.encryption_key;
  return out;
}
