// The TLS parts of the config schema: a listener's `tls:` block and `redirect_https`, an
// upstream's `tls:` block, and the top-level `acme:` section, with their defaults. Beside the
// TLS code so the TLS options stay together; src/config/schema.ts only places them.
// Descriptions are the user docs.
import { Type } from '@sinclair/typebox';
import { duration, object, stringEnum } from '../../config/schema-kit.js';
import { redisConnectionProps } from '../../util/redis.js';

/**
 * TLS 1.3 suites (all AEAD, RFC 8446 §9.1) then TLS 1.2 ECDHE suites with AEAD ciphers only
 * (GCM, ChaCha20-Poly1305): forward secrecy, no CBC (Lucky13), no RSA key exchange (ROBOT).
 * The same choice as Mozilla's "intermediate" profile.
 */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_DEFAULTS = {
  listener: {
    min_version: 'TLSv1.2',
    ciphers: DEFAULT_CIPHERS,
    session_tickets: true,
    ticket_key_rotation: '12h',
    hsts: { max_age: 31_536_000, include_subdomains: false, preload: false },
    client_auth: { mode: 'require' },
  },
  upstream: { insecure_skip_verify: false },
  acme: {
    directory: 'https://acme-v02.api.letsencrypt.org/directory',
    storage: 'acme',
    challenges: ['http-01', 'tls-alpn-01'],
    renew_before_days: 30,
    check_interval: '12h',
    retry: { min: '30s', max: '1h' },
    redis: { prefix: 'usher:acme:', timeout: '2s' },
  },
} as const;

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export const CLIENT_AUTH_MODES = ['require', 'request'] as const;
export const ACME_CHALLENGES = ['http-01', 'tls-alpn-01'] as const;

const FILE = ' Relative paths are resolved against the config file\'s directory.';
const NAME_PATTERN = '^(\\*\\.)?[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$';
const NAME_EXPECTED = 'a host name like "example.com" or "*.example.com" (no port)';


const file = (description: string) => Type.String({ minLength: 1, description: description + FILE });

const Certificate = object(
  {
    cert: file('Certificate chain file (PEM), the server\'s certificate first.'),
    key: file('Private key file (PEM).'),
    names: Type.Optional(
      Type.Array(Type.String({ pattern: NAME_PATTERN, 'x-usher-expected': NAME_EXPECTED }), {
        minItems: 1,
        description: 'Server names (SNI) this certificate answers for; "*.example.com" covers one label. Default: the DNS names in the certificate\'s subjectAltName.',
      }),
    ),
  },
  { description: 'One certificate, chosen when the client asks for one of its names (SNI).' },
);

export const ListenerTls = object(
  {
    cert: Type.Optional(file('Default certificate chain file (PEM): served when no other certificate matches the requested name, or the client sends no SNI.')),
    key: Type.Optional(file('Private key file (PEM) of `cert`.')),
    certificates: Type.Optional(
      Type.Array(Certificate, {
        description: 'More certificates, chosen by the server name the client asks for (SNI): an exact name wins over a wildcard; no match gets the default (`cert`, or else the first of these). Files are re-read when they change and on SIGHUP; new handshakes get the new certificate, open connections keep theirs.',
      }),
    ),
    min_version: Type.Optional(
      stringEnum(TLS_VERSIONS, { default: TLS_DEFAULTS.listener.min_version, description: 'Oldest TLS version accepted. TLS 1.0 and 1.1 are never accepted (RFC 8996).' }),
    ),
    ciphers: Type.Optional(
      Type.String({
        minLength: 1,
        default: TLS_DEFAULTS.listener.ciphers,
        description: 'Cipher suites in OpenSSL notation, ":"-separated, TLS 1.3 names (TLS_AES_128_GCM_SHA256) included. The default allows only AEAD suites with forward secrecy.',
      }),
    ),
    session_tickets: Type.Optional(
      Type.Boolean({ default: TLS_DEFAULTS.listener.session_tickets, description: 'Let clients resume sessions with tickets (RFC 8446 §2.2, RFC 5077), saving a full handshake.' }),
    ),
    ticket_key_rotation: Type.Optional(
      duration('How often the session-ticket key is replaced with a fresh random one, which bounds how long a stolen key decrypts recorded sessions; tickets issued under the old key then need a full handshake.', TLS_DEFAULTS.listener.ticket_key_rotation),
    ),
    hsts: Type.Optional(
      object(
        {
          max_age: Type.Optional(
            Type.Integer({ minimum: 0, default: TLS_DEFAULTS.listener.hsts.max_age, description: 'Seconds browsers remember to use HTTPS only (default one year). 0 tells them to forget.' }),
          ),
          include_subdomains: Type.Optional(Type.Boolean({ default: TLS_DEFAULTS.listener.hsts.include_subdomains, description: 'Also apply to every subdomain.' })),
          preload: Type.Optional(Type.Boolean({ default: TLS_DEFAULTS.listener.hsts.preload, description: 'Add the "preload" token (for the browsers\' preload lists).' })),
        },
        { description: 'Send Strict-Transport-Security (RFC 6797) on every response from this listener (an upstream\'s own value is kept).' },
      ),
    ),
    client_auth: Type.Optional(
      object(
        {
          mode: Type.Optional(
            stringEnum(CLIENT_AUTH_MODES, {
              default: TLS_DEFAULTS.listener.client_auth.mode,
              description: 'require: a handshake without a valid client certificate fails. request: a client certificate is asked for; without a valid one the request still proceeds, with no identity headers.',
            }),
          ),
          ca: file('CA certificates (PEM) that client certificates must chain to.'),
        },
        {
          description:
            'Mutual TLS: verify client certificates. The verified identity goes upstream in X-Client-Cert-Subject, -Issuer, -San, -Serial and -Fingerprint (SHA-256); headers starting with X-Client-Cert- that a client sends are always removed, on every listener.',
        },
      ),
    ),
  },
  { description: 'Terminate TLS on this listener. Needs a certificate (`cert`/`key` or `certificates`) unless `acme` provides them.' },
);

export const RedirectHttps = Type.Union([Type.Boolean(), Type.Integer({ minimum: 1, maximum: 65535 })], {
  description:
    'On a plain listener: answer every request with a 308 redirect to the same URL over https (true: port 443; a number: that port). Requests for /.well-known/acme-challenge/ are still answered (ACME HTTP-01).',
  'x-usher-expected': 'true, false or a port number',
});

export const UpstreamTls = object(
  {
    ca: Type.Optional(file('CA certificates (PEM) to verify the servers against, instead of the system roots.')),
    servername: Type.Optional(
      Type.String({ pattern: NAME_PATTERN, 'x-usher-expected': NAME_EXPECTED, description: 'Name sent in SNI and checked against the server certificate. Default: the host of the server URL (IP addresses send no SNI).' }),
    ),
    cert: Type.Optional(file('Client certificate chain (PEM) for upstream mutual TLS.')),
    key: Type.Optional(file('Private key (PEM) of the client certificate.')),
    insecure_skip_verify: Type.Optional(
      Type.Boolean({
        default: TLS_DEFAULTS.upstream.insecure_skip_verify,
        description: 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic. For tests only; logged as a warning.',
      }),
    ),
  },
  { description: 'TLS to the https:// servers of this upstream. Certificates are verified by default.' },
);

const AcmeRedis = object(
  {
    ...redisConnectionProps(),
    prefix: Type.Optional(Type.String({ default: TLS_DEFAULTS.acme.redis.prefix, description: 'Prefix of every key usher writes (`account`, `cert:DOMAIN`, `version`, `lock`, `challenges`, `ack:…`, `instances`). Instances sharing ACME state use the same prefix.' })),
    timeout: Type.Optional(duration('Longest a command to the store may take before it counts as unreachable.', TLS_DEFAULTS.acme.redis.timeout)),
    encryption_key: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'Encrypts the account key and the certificates\' private keys in Redis (AES-256-GCM; the key is derived from this text with SHA-256): anyone who can read the Redis then cannot use them. Give it from the environment: `encryption_key: "${USHER_ACME_KEY}"`. Every instance needs the same value.',
      }),
    ),
  },
  { description: 'The Redis (or Sentinel, or Cluster) holding the ACME state of every usher instance that names it. The account key and private keys are secrets: protect the Redis (password, TLS, network) or set `encryption_key`.' },
);

export const Acme = object(
  {
    domains: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', 'x-usher-expected': 'a host name like "example.com" (no wildcard: HTTP-01 and TLS-ALPN-01 cannot prove one)' }), {
      minItems: 1,
      description: 'Host names to obtain certificates for, one certificate each. Every TLS listener serves them by SNI.',
    }),
    email: Type.Optional(Type.String({ minLength: 3, description: 'Contact address for the account (expiry notices from the CA).' })),
    directory: Type.Optional(
      Type.String({ pattern: '^https?://\\S+$', 'x-usher-expected': 'an https:// URL', default: TLS_DEFAULTS.acme.directory, description: 'ACME directory URL (RFC 8555 §7.1.1). Default: Let\'s Encrypt production; use its staging URL or a private CA\'s to test.' }),
    ),
    ca: Type.Optional(file('Extra CA certificates (PEM) trusted for the ACME server\'s own HTTPS, for private CAs.')),
    storage: Type.Optional(
      Type.Union(
        [
          Type.String({ minLength: 1, description: 'A directory for the account key and the certificates, shared safely by several usher processes on one machine (a lock file lets only one order at a time).' + FILE }),
          object({ redis: AcmeRedis }, { description: 'Redis: usher instances on several machines share the account, the certificates and the order lock.' }),
        ],
        {
          default: TLS_DEFAULTS.acme.storage,
          'x-usher-expected': 'a directory, or {redis: {url | cluster | options, prefix, encryption_key}}',
          description: 'Where the account key and the certificates are kept, and how concurrent orders are prevented: a directory (one machine) or Redis (several machines: one order for all, every instance serves the result).',
        },
      ),
    ),
    challenges: Type.Optional(
      Type.Array(stringEnum(ACME_CHALLENGES, {}), {
        minItems: 1,
        default: [...TLS_DEFAULTS.acme.challenges],
        description: 'Challenge types usher may answer, in order of preference. http-01 needs a plain listener on port 80, tls-alpn-01 a TLS listener on port 443 (as the CA sees them).',
      }),
    ),
    renew_before_days: Type.Optional(
      Type.Integer({ minimum: 1, default: TLS_DEFAULTS.acme.renew_before_days, description: 'Renew a certificate this many days before it expires.' }),
    ),
    check_interval: Type.Optional(duration('How often certificates are checked for renewal.', TLS_DEFAULTS.acme.check_interval)),
    retry: Type.Optional(
      object(
        {
          min: Type.Optional(duration('Wait after the first failed order.', TLS_DEFAULTS.acme.retry.min)),
          max: Type.Optional(duration('Longest wait between attempts; the wait doubles after each failure up to this.', TLS_DEFAULTS.acme.retry.max)),
        },
        { description: 'Backoff between failed attempts to obtain a certificate.' },
      ),
    ),
  },
  { description: 'Automatic certificates (ACME, RFC 8555) from Let\'s Encrypt or another CA.' },
);
