// The auth config section: what the schema cannot say (hash formats, htpasswd lines, one kind
// per route), reported at the spot with file:line:col; and a route without auth compiles no hook.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
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
    [20, 11, 'routes[6].auth', '"auth" needs one of "basic", "jwt", "forward"'],
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

test('jwt auth config errors, with file:line:col', (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = inDir(t, {
    'pub.pem': publicKey.export({ type: 'spki', format: 'pem' }) as string,
    'priv.pem': privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    'bad.json': '{ "keys": [',
    'empty.jwks': '{ "keys": [] }',
  });
  const got = errors(
    `${HEAD}  - upstream: app
    auth: { jwt: { issuer: x } }
  - upstream: app
    auth: { jwt: { secret: short } }
  - upstream: app
    auth: { jwt: { secret: "${'s'.repeat(40)}", jwks: { url: "https://id.test/jwks" } } }
  - upstream: app
    auth: { jwt: { key_file: pub.pem, algorithms: [RS256, ES256] } }
  - upstream: app
    auth: { jwt: { key_file: priv.pem } }
  - upstream: app
    auth: { jwt: { key_file: bad.json } }
  - upstream: app
    auth: { jwt: { key_file: empty.jwks } }
  - upstream: app
    auth: { jwt: { key: "not a key" } }
  - upstream: app
    auth: { jwt: { secret: "${'s'.repeat(40)}", algorithms: [none] } }
  - upstream: app
    auth: { jwt: { secret: "${'s'.repeat(40)}", algorithms: [HS512] } }
  - upstream: app
    auth: { jwt: { secret: "${'s'.repeat(40)}", claims_to_headers: { sub: Authorization, email: x-user, name: X-User } } }
  - upstream: app
    auth: { basic: { users: { a: "${HASH}" } }, jwt: { secret: "${'s'.repeat(40)}" } }
  - upstream: app
    auth: { jwt: { jwks: { url: "ftp://id.test" } } }
`,
    dir,
  );
  assert.deepEqual(got.map((b) => b.slice(0, 2)), [[6, 18], [8, 28], [10, 72], [12, 51], [14, 30], [16, 30], [18, 30], [20, 25], [22, 85], [24, 28], [26, 98], [26, 134], [28, 11], [30, 33]]);
  assert.deepEqual(got.map((b) => b.slice(2)), [
    ['routes[0].auth.jwt', 'JWT auth needs a key: one of "secret", "key", "key_file" or "jwks"'],
    ['routes[1].auth.jwt.secret', 'the secret has 5 bytes; HMAC keys need at least 32 (RFC 7518 §3.2: as long as the hash)', 'use a long random secret, e.g. `openssl rand -base64 48`'],
    ['routes[2].auth.jwt.jwks', 'JWT auth takes one key source, found "secret" and "jwks"', 'keep one (a JWK Set holds several keys)'],
    ['routes[3].auth.jwt.algorithms', 'RS256 cannot be verified with this key', 'this key verifies ES256'],
    ['routes[4].auth.jwt.key_file', 'priv.pem: this is a private key: give usher the public key only', 'openssl pkey -in key.pem -pubout'],
    ['routes[5].auth.jwt.key_file', "bad.json: invalid JSON: Unexpected end of JSON input"],
    ['routes[6].auth.jwt.key_file', 'empty.jwks: the JWK Set has no keys'],
    ['routes[7].auth.jwt.key', 'expected a PEM public key ("-----BEGIN PUBLIC KEY-----"), a JWK or a JWK Set'],
    ['routes[8].auth.jwt.algorithms[0]', 'expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519, got "none"'],
    ['routes[9].auth.jwt.secret', 'the secret has 40 bytes; HMAC keys need at least 64 (RFC 7518 §3.2: as long as the hash)', 'use a long random secret, e.g. `openssl rand -base64 48`'],
    ['routes[10].auth.jwt.claims_to_headers.sub', '"Authorization" cannot carry a claim: usher or the client needs it as it is', 'use a header of your own, such as x-user-id'],
    ['routes[10].auth.jwt.claims_to_headers.name', 'header "X-User" already carries claim "email"'],
    ['routes[11].auth', 'a route takes one kind of auth, found "basic" and "jwt"', 'split the route, or keep one'],
    ['routes[12].auth.jwt.jwks.url', 'expected an http:// or https:// URL, got "ftp://id.test"'],
  ]);
});

test('a rate limit keyed on a JWT claim needs auth.jwt on its route, and applies to routes only', () => {
  const got = errors(
    `${HEAD}  - { upstream: app, rate_limits: [per_user] }
  - { upstream: app, rate_limits: [per_user], auth: { jwt: { secret: "${'s'.repeat(40)}" } } }
rate_limits:
  policies:
    per_user: { rate: 10, key: [{ jwt_claim: sub }] }
  global: [per_user]
`,
    tmpdir(),
  );
  assert.deepEqual(got.map((b) => b.slice(2)), [
    ['routes[0].rate_limits[0]', 'policy "per_user" keys on the JWT claim "sub", and this route has no "auth.jwt" to verify a token', 'add `auth: { jwt: ... }` to the route, or use a policy with another key'],
    ['rate_limits.global[0]', 'policy "per_user" keys on jwt_claim, which is known only after routing; a global policy keys on client_ip or a header', 'attach it to routes instead'],
  ]);
});

test('a JWT route compiles its filter before the rate limits; its key and algorithms are fixed at load', () => {
  const { publicKey } = generateKeyPairSync('ed25519');
  const pem = (publicKey.export({ type: 'spki', format: 'pem' }) as string).replace(/\n/g, '\\n');
  const r = loadConfigText(
    `${HEAD}  - { name: api, upstream: app, rate_limits: [per_user], auth: { jwt: { key: "${pem}", audience: api, leeway: 30s, require: { scope: read, admin: true }, claims_to_headers: { sub: X-User } } } }
rate_limits: { policies: { per_user: { rate: 10, key: [{ jwt_claim: sub }] } } }
`,
    join(tmpdir(), 'usher.yaml'),
    {},
  );
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  const jwt = r.config.routes[0]!.auth!.jwt!;
  assert.deepEqual(jwt.algorithms, ['EdDSA', 'Ed25519']);
  assert.equal(jwt.leeway, 30);
  assert.deepEqual(jwt.audience, ['api']);
  assert.deepEqual(jwt.require, [['scope', ['read']], ['admin', true]]);
  assert.deepEqual(jwt.claims_to_headers, [['sub', 'x-user']]);
  const { runtime } = Runtime.build(r.config);
  const api = (runtime.router as HostPathRouter<CompiledRoute>).candidates.map((c) => c.route).find((c) => c.name === 'api')!;
  assert.deepEqual(api.phases.request.map((f) => f.name), ['auth_jwt', 'rate_limit']);
  assert.equal(api.filters[0]!.explain!(), 'auth jwt (pem; EdDSA,Ed25519; aud api; requires scope, admin; claims → x-user)');
});

test('forward auth config errors, with file:line:col; its upstream counts as used', () => {
  const r = loadConfigText(
    `${HEAD}  - upstream: app
    auth: { forward: { timeout: 1s } }
  - upstream: app
    auth: { forward: { url: "http://a.test/", upstream: app, path: /x } }
  - upstream: app
    auth: { forward: { upstream: authz, request_headers: [Authorization, Host], response_headers: [X-User, Content-Length] } }
  - upstream: app
    auth: { forward: { url: "http://a.test/", cache: { ttl: 1m } } }
  - upstream: app
    auth: { forward: { url: "http://a.test/", path: /x } }
  - upstream: app
    auth: { forward: { url: "http://a.test/", body: 8kb, cache: { key: [Cookie] } } }
`,
    join(tmpdir(), 'usher.yaml'),
    {},
  );
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : brief(r.errors), [
    [6, 22, 'routes[0].auth.forward', 'forward auth needs "url" or "upstream" (the auth service)'],
    [8, 47, 'routes[1].auth.forward.upstream', 'forward auth takes "url" or "upstream", not both'],
    [10, 34, 'routes[2].auth.forward.upstream', 'no upstream named "authz"', 'defined upstreams: app'],
    [10, 74, 'routes[2].auth.forward.request_headers[1]', '"Host" is not copied: usher sets it (or it is hop-by-hop) for the auth request'],
    [10, 108, 'routes[2].auth.forward.response_headers[1]', '"Content-Length" cannot be copied onto the upstream request'],
    [12, 54, 'routes[3].auth.forward.cache', 'missing required key "key"'],
    [14, 47, 'routes[4].auth.forward.path', '"path" goes with "upstream" (a "url" has its own path)'],
    [16, 58, 'routes[5].auth.forward.cache', 'a reused decision would not see the request body: "cache" and "body" do not go together', 'keep one of them'],
  ]);
  const ok = loadConfigText(
    `listeners: [{ address: 8080 }]
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
  authz: { servers: [http://127.0.0.1:3002] }
routes:
  - { name: api, upstream: app, auth: { forward: { upstream: authz, path: /check, response_headers: [X-User], cache: { key: [Authorization] } } } }
`,
    join(tmpdir(), 'usher.yaml'),
    {},
  );
  assert.ok(ok.ok, ok.ok ? '' : JSON.stringify(ok.errors));
  assert.deepEqual(ok.warnings, [], 'authz is used');
  assert.deepEqual(ok.config.routes[0]!.auth!.forward, { upstream: 'authz', path: '/check', response_headers: ['x-user'], timeout: 5000, cache: { key: ['authorization'], ttl: 10_000 } });
  const { runtime } = Runtime.build(ok.config);
  const api = (runtime.router as HostPathRouter<CompiledRoute>).candidates.map((c) => c.route)[0]!;
  assert.deepEqual(api.phases.request.map((f) => f.name), ['auth_forward']);
  assert.equal(api.filters[0]!.explain!(), 'auth forward (upstream authz/check; timeout 5000 ms; copies x-user; cache 10000 ms by authorization; not asked under explain)');
});

test('a JWKS takes a url, or an upstream with a path (counted as used)', () => {
  const r = loadConfigText(
    `${HEAD}  - { upstream: app, auth: { jwt: { jwks: { cache: 1m } } } }
  - { upstream: app, auth: { jwt: { jwks: { url: "https://a.test/k", upstream: app } } } }
  - { upstream: app, auth: { jwt: { jwks: { upstream: idp } } } }
  - { upstream: app, auth: { jwt: { jwks: { url: "https://a.test/k", path: /k } } } }
`,
    join(tmpdir(), 'usher.yaml'),
    {},
  );
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : brief(r.errors).map((b) => b.slice(2)), [
    ['routes[0].auth.jwt.jwks', 'a JWKS needs "url" or "upstream" (with "path")'],
    ['routes[1].auth.jwt.jwks.upstream', 'a JWKS takes "url" or "upstream", not both'],
    ['routes[2].auth.jwt.jwks', '"upstream" needs "path": where the upstream serves the key set'],
    ['routes[2].auth.jwt.jwks.upstream', 'no upstream named "idp"', 'defined upstreams: app'],
    ['routes[3].auth.jwt.jwks.path', '"path" goes with "upstream" (a "url" has its own path)'],
  ]);
});
