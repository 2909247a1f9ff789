// `auth: { basic: ... }` — HTTP Basic authentication (RFC 7617) with bcrypt hashes, inline or
// from an htpasswd file (Apache's format, `htpasswd -B`). The file is read when the config is
// loaded, so it is re-read on every reload; its problems are config errors at the `htpasswd` key,
// naming the line of the file.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { isRec, type ErrorFn } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { duration, object } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';

export const BASIC_DEFAULTS = { realm: 'usher', forward_authorization: false, cache: '1m' } as const;

/** A bcrypt hash as htpasswd -B and other tools write it: $2y$ (PHP, htpasswd), $2a$ or $2b$ (OpenBSD). */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

export const BasicAuthSchema = object(
  {
    realm: Type.Optional(Type.String({ minLength: 1, default: BASIC_DEFAULTS.realm, description: 'The realm in `WWW-Authenticate: Basic realm="..."`: browsers show it in their login prompt.' })),
    users: Type.Optional(
      Type.Record(Type.String({ pattern: '^[^:\\s]+$' }), Type.String({ minLength: 1 }), {
        additionalProperties: false,
        description: 'User name: bcrypt hash ("$2y$...", as `htpasswd -nB user` prints it; $2a$ and $2b$ too).',
        'x-usher-key': 'user name',
        'x-usher-expected': 'a user name without ":" or spaces',
      }),
    ),
    htpasswd: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'An htpasswd file of `user:bcrypt-hash` lines (`htpasswd -B`; "#" comments), relative to the config file. Read when the config is loaded and on every reload.',
      }),
    ),
    forward_authorization: Type.Optional(
      Type.Boolean({ default: BASIC_DEFAULTS.forward_authorization, description: 'Send the client\'s Authorization field upstream (by default usher removes it: the upstream never sees the password).' }),
    ),
    cache: Type.Optional(
      duration(
        'How long a verified user:password is remembered (by its SHA-256, in this process), so that bcrypt, which is slow on purpose, is paid once per client rather than per request. 0 disables it. A reload forgets everything.',
        BASIC_DEFAULTS.cache,
      ),
    ),
  },
  { description: 'HTTP Basic authentication (RFC 7617) against bcrypt hashes: 401 auth_required without credentials, 401 auth_invalid with wrong ones, 400 auth_malformed for an Authorization field that is not Basic\'s syntax.' },
);

export type BasicAuthInput = Static<typeof BasicAuthSchema>;

export interface BasicAuthConfig {
  realm: string;
  /** [user, bcrypt hash] pairs: inline users first, then the file's (pairs, so they cross threads as they are). */
  users: [string, string][];
  forward_authorization: boolean;
  /** ms; 0: no cache. */
  cache: number;
}

interface Parsed {
  users: [string, string][];
  problems: string[];
}

/** An htpasswd file's users, and what is wrong with its lines. */
export function parseHtpasswd(text: string): Parsed {
  const users: [string, string][] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) return void problems.push(`line ${i + 1}: expected "user:hash"`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const bad = hashProblem(hash);
    if (bad !== undefined) return void problems.push(`line ${i + 1}: user ${JSON.stringify(user)}: ${bad}`);
    if (seen.has(user)) return void problems.push(`line ${i + 1}: user ${JSON.stringify(user)} again`);
    seen.add(user);
    users.push([user, hash]);
  });
  return { users, problems };
}

/** Why `hash` is not a bcrypt hash usher can check, or undefined. */
function hashProblem(hash: string): string | undefined {
  if (BCRYPT.test(hash)) return undefined;
  if (hash.startsWith('$apr1$')) return 'an MD5 (apr1) hash; usher checks bcrypt only (htpasswd -B)';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 hash; usher checks bcrypt only (htpasswd -B)';
  if (/^\$(1|5|6)\$/.test(hash)) return 'a crypt(3) MD5/SHA hash; usher checks bcrypt only (htpasswd -B)';
  return 'not a bcrypt hash ("$2y$10$" and 53 characters)';
}

export function normalizeBasic(b: BasicAuthInput, filePath: (p: string) => string): BasicAuthConfig {
  const users: [string, string][] = Object.entries(b.users ?? {});
  if (b.htpasswd !== undefined) users.push(...parseHtpasswd(readFileSync(filePath(b.htpasswd), 'utf8')).users);
  return {
    realm: b.realm ?? BASIC_DEFAULTS.realm,
    users,
    forward_authorization: b.forward_authorization ?? BASIC_DEFAULTS.forward_authorization,
    cache: parseDuration(b.cache ?? BASIC_DEFAULTS.cache),
  };
}

export function checkBasic(b: unknown, at: Segment[], error: ErrorFn, resolve: (p: string) => string): void {
  if (!isRec(b)) return;
  if (b.users === undefined && b.htpasswd === undefined) error(at, 'basic auth needs "users" or "htpasswd" (or both)');
  checkRealm(b.realm, [...at, 'realm'], error);
  const inline = isRec(b.users) ? b.users : {};
  for (const [user, hash] of Object.entries(inline)) {
    if (typeof hash !== 'string') continue;
    const bad = hashProblem(hash);
    if (bad !== undefined) error([...at, 'users', user], `user ${JSON.stringify(user)}: ${bad}`, 'make one with `htpasswd -nB user`');
  }
  if (typeof b.htpasswd !== 'string' || b.htpasswd === '') return;
  let text: string;
  try {
    text = readFileSync(resolve(b.htpasswd), 'utf8');
  } catch (err) {
    return error([...at, 'htpasswd'], `cannot read ${JSON.stringify(b.htpasswd)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const parsed = parseHtpasswd(text);
  const twice = parsed.users.filter(([u]) => u in inline).map(([u]) => u);
  const problems = [...parsed.problems, ...twice.map((u) => `user ${JSON.stringify(u)} is also under "users"`)];
  if (problems.length > 0) error([...at, 'htpasswd'], `${b.htpasswd}: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, 'each line is "user:hash" with a bcrypt hash (`htpasswd -B`)');
  else if (parsed.users.length === 0 && b.users === undefined) error([...at, 'htpasswd'], `${b.htpasswd} has no users`);
}

/** A realm goes into a quoted-string (RFC 9110 §5.6.4): no control characters. */
export function checkRealm(realm: unknown, at: Segment[], error: ErrorFn): void {
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (typeof realm === 'string' && /[\x00-\x1f\x7f]/.test(realm)) error(at, `expected a realm without control characters, got ${JSON.stringify(realm)}`);
}

/** The realm as a quoted-string. */
export function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}
