// The auth config section: what the schema cannot say (hash formats, htpasswd lines, one kind
// per route), reported at the spot with file:line:col; and a route without auth compiles no hook.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigText } from '../../src/config/index.js';
import type { CompiledRoute } from '../../src/pipeline/types.js';
import type { HostPathRouter } from '../../src/router/index.js';
import { Runtime } from '../../src/server/runtime.js';
import { brief, type Brief } from '../helpers/issues.js';

const HASH = '$2y$10$' + 'a'.repeat(53);

function inDir(t: { after(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function errors(text: string, dir: string): Brief[] {
  const r = loadConfigText(text, join(dir, 'usher.yaml'), {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : brief(r.errors);
}

const HEAD = `listeners: [{ address: 8080 }]
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
`;

test('basic auth config errors, with file:line:col', (t) => {
  const dir = inDir(t, {
    'bad.htpasswd': `# comment\nann:${HASH}\nbob:$apr1$abc$def\nnocolon\nann:${HASH}\ncy:{SHA}xyz=\ndee:$6$salt$hash\n`,
    'empty.htpasswd': '# nobody\n',
    'dup.htpasswd': `alice:${HASH}\n`,
  });
  const got = errors(
    `${HEAD}  - upstream: app
    auth: { basic: { realm: staff } }
  - upstream: app
    auth:
      basic:
        users: { alice: "not-a-hash", bob: "$2x$10$${'a'.repeat(53)}" }
  - upstream: app
    auth: { basic: { htpasswd: bad.htpasswd } }
  - upstream: app
    auth: { basic: { htpasswd: missing.htpasswd } }
  - upstream: app
    auth: { basic: { htpasswd: empty.htpasswd } }
  - upstream: app
    auth: { basic: { users: { alice: "${HASH}" }, htpasswd: dup.htpasswd } }
  - upstream: app
    auth: {}
  - upstream: app
    auth: { basic: { users: { "a:b": "${HASH}" }, realm: "a\\nb" } }
`,
    dir,
  );
  assert.deepEqual(got, [
    [6, 20, 'routes[0].auth.basic', 'basic auth needs "users" or "htpasswd" (or both)'],
    [10, 25, 'routes[1].auth.basic.users.alice', 'user "alice": not a bcrypt hash ("$2y$10$" and 53 characters)', 'make one with `htpasswd -nB user`'],
    [10, 44, 'routes[1].auth.basic.users.bob', 'user "bob": not a bcrypt hash ("$2y$10$" and 53 characters)', 'make one with `htpasswd -nB user`'],
    [
      12,
      32,
      'routes[2].auth.basic.htpasswd',
      'bad.htpasswd: line 3: user "bob": an MD5 (apr1) hash; usher checks bcrypt only (htpasswd -B); line 4: expected "user:hash"; line 5: user "ann" again (and 2 more)',
      'each line is "user:hash" with a bcrypt hash (`htpasswd -B`)',
    ],
    [14, 32, 'routes[3].auth.basic.htpasswd', 'cannot read "missing.htpasswd": ENOENT'],
    [16, 32, 'routes[4].auth.basic.htpasswd', 'empty.htpasswd has no users'],
    [18, 114, 'routes[5].auth.basic.htpasswd', 'dup.htpasswd: user "alice" is also under "users"', 'each line is "user:hash" with a bcrypt hash (`htpasswd -B`)'],
    [20, 11, 'routes[6].auth', '"auth" needs one of "basic"'],
    [22, 31, 'routes[7].auth.basic.users["a:b"]', 'invalid user name "a:b": expected a user name without ":" or spaces'],
    [22, 111, 'routes[7].auth.basic.realm', 'expected a realm without control characters, got "a\\nb"'],
  ]);
});

test('a route without auth compiles no auth hook; a basic route gets request and upstream_request, and reads its htpasswd file relative to the config', (t) => {
  const dir = inDir(t, { 'users.htpasswd': `bob:${HASH}\n` });
  const r = loadConfigText(`${HEAD}  - { name: plain, upstream: app }\n  - { name: staff, match: { path: /s }, upstream: app, auth: { basic: { htpasswd: users.htpasswd, users: { ann: "${HASH}" } } } }\n`, join(dir, 'usher.yaml'), {});
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  assert.deepEqual(r.config.routes[1]!.auth, { basic: { realm: 'usher', users: [['ann', HASH], ['bob', HASH]], forward_authorization: false, cache: 60_000 } });
  const { runtime } = Runtime.build(r.config);
  const routes = (runtime.router as HostPathRouter<CompiledRoute>).candidates.map((c) => c.route);
  const plain = routes.find((c) => c.name === 'plain')!;
  const staff = routes.find((c) => c.name === 'staff')!;
  assert.equal(plain.filters.length, 0);
  assert.deepEqual(staff.phases.request.map((f) => f.name), ['auth_basic']);
  assert.deepEqual(staff.phases.upstreamRequest.map((f) => f.name), ['auth_basic']);
  assert.deepEqual(staff.phases.response, []);
  assert.equal(staff.filters[0]!.explain!(), 'auth basic (realm "usher", 2 users)');
});
