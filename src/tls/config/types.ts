// Normalized TLS settings (see schema.ts for what each means). File paths are absolute,
// durations in milliseconds; nothing is read from disk here — src/tls/ loads the files.
import type { RedisConnection } from '../../util/redis.js';

export interface CertificateFiles {
  cert: string;
  key: string;
  /** Lower-cased SNI names; empty: taken from the certificate's subjectAltName when loaded. */
  names: string[];
}

export interface ListenerTlsConfig {
  /** The default certificate (from `cert`/`key`), if any. */
  default?: CertificateFiles;
  certificates: CertificateFiles[];
  min_version: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string;
  session_tickets: boolean;
  ticket_key_rotation: number; // ms
  /** The Strict-Transport-Security value, or null for none. */
  hsts: string | null;
  client_auth: { mode: 'require' | 'request'; ca: string } | null;
}

export interface UpstreamTlsConfig {
  ca?: string;
  servername?: string;
  cert?: string;
  key?: string;
  insecure_skip_verify: boolean;
}

export interface AcmeRedisConfig extends RedisConnection {
  prefix: string;
  timeout: number; // ms
  encryption_key?: string;
}

export interface AcmeConfig {
  domains: string[]; // lower case
  email?: string;
  directory: string;
  ca?: string;
  /** An absolute directory, or the Redis shared by several instances. */
  storage: string | { redis: AcmeRedisConfig };
  challenges: ('http-01' | 'tls-alpn-01')[];
  renew_before_days: number;
  check_interval: number; // ms
  retry: { min: number; max: number }; // ms
}
