// `auth: { basic }` — HTTP Basic (RFC 7617) against bcrypt hashes (bcryptjs: pure JavaScript,
// so no native build and no prebuilt binary to fetch; it verifies asynchronously in slices, so
// a verification does not hold the event loop).
//
// bcrypt is slow on purpose (about 100 ms at cost 10 on one core here), so a verified
// user:password is remembered by its SHA-256 for `cache` (a few µs per request after the first);
// requests with the same credentials that arrive while one is being verified wait for that one
// verification. An unknown user is checked against a dummy hash, so that an answer takes as long
// as for a known one (no user enumeration by timing); bcrypt's own comparison is constant-time.
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Filter, LocalResponse, RequestContext, UpstreamRequestHead } from '../../pipeline/types.js';
import { quoted, type BasicAuthConfig } from './basic-config.js';
import { removeField } from '../../util/fields.js';
import { challenge, credentialsOf } from './replies.js';

/** Most remembered verifications: the oldest go first beyond it. */
const MAX_CACHED = 10_000;
const TOKEN68 = /^[A-Za-z0-9+/]+=*$/;

export class BasicAuth implements Filter {
  readonly name = 'auth_basic';
  private readonly users: ReadonlyMap<string, string>;
  private readonly challengeField: string;
  /** Checked for an unknown user: a configured user's hash with another checksum (same cost, never matches). */
  private readonly dummy: string;
  /** SHA-256 of the credentials → when the verification expires (performance.now() ms). */
  private readonly verified = new Map<string, number>();
  private readonly pending = new Map<string, Promise<boolean>>();

  constructor(private readonly config: BasicAuthConfig) {
    this.users = new Map(config.users);
    this.challengeField = `Basic realm=${quoted(config.realm)}, charset="UTF-8"`;
    const some = config.users[0]?.[1] ?? '$2b$10$0000000000000000000000000000000000000000000000000000';
    this.dummy = some.slice(0, 29) + (some[29] === 'A' ? 'B' : 'A') + some.slice(30);
  }

  request(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const creds = credentialsOf(ctx.header('authorization'), 'basic');
    if (creds === null) return challenge(ctx, 'auth_required', this.challengeField);
    // RFC 7617 §2: token68, the base64 of user-id ":" password.
    if (!TOKEN68.test(creds)) return challenge(ctx, 'auth_malformed', this.challengeField);
    const decoded = Buffer.from(creds, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return challenge(ctx, 'auth_malformed', this.challengeField);
    const digest = createHash('sha256').update(decoded).digest('base64');
    const until = this.verified.get(digest);
    if (until !== undefined) {
      if (until > performance.now()) return undefined;
      this.verified.delete(digest);
    }
    let p = this.pending.get(digest);
    if (p === undefined) {
      p = this.verify(decoded.slice(0, colon), decoded.slice(colon + 1), digest, ctx.explaining);
      this.pending.set(digest, p);
    }
    return p.then((ok) => (ok ? undefined : challenge(ctx, 'auth_invalid', this.challengeField)));
  }

  private async verify(user: string, password: string, digest: string, explaining: boolean): Promise<boolean> {
    try {
      const hash = this.users.get(user);
      const ok = (await bcrypt.compare(password, hash ?? this.dummy)) && hash !== undefined;
      // `usher explain` stores nothing.
      if (ok && this.config.cache > 0 && !explaining) {
        if (this.verified.size >= MAX_CACHED) this.verified.delete(this.verified.keys().next().value!);
        this.verified.set(digest, performance.now() + this.config.cache);
      }
      return ok;
    } finally {
      this.pending.delete(digest);
    }
  }

  upstreamRequest(_ctx: RequestContext, head: UpstreamRequestHead): void {
    if (!this.config.forward_authorization) removeField(head.headers, 'authorization');
  }

  explain(): string {
    const c = this.config;
    return `auth basic (realm ${quoted(c.realm)}, ${c.users.length} user${c.users.length === 1 ? '' : 's'}${c.forward_authorization ? ', Authorization forwarded' : ''})`;
  }
}
