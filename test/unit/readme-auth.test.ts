// The README's authentication examples are valid configs that mean what the text says.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import { formatIssues, loadConfigText } from '../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Authentication'), readme.indexOf('## Operating usher'));
const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
const upstreams = 'upstreams:\n  admin: { servers: [http://127.0.0.1:3001] }\n  api: { servers: [http://127.0.0.1:3002] }\n  app: { servers: [http://127.0.0.1:3003] }\n  authz: { servers: [http://10.0.0.9:4180] }\n';

test('the README authentication examples are valid and mean what the text says', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'staff.htpasswd'), `bob:${bcrypt.hashSync('builder', 4)}\n`);
  const load = (yaml: string) => {
    const r = loadConfigText(`listeners: [{ address: 0 }]\n${upstreams}${yaml}`, join(dir, 'usher.yaml'), {});
    assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
    return r.config;
  };
  assert.equal(blocks.length, 3);
  const basic = load(blocks[0]!).routes[0]!.auth!.basic!;
  assert.equal(basic.realm, 'Staff');
  assert.deepEqual(basic.users.map(([u]) => u), ['alice', 'bob']);
  assert.ok(bcrypt.compareSync('wonderland', basic.users[0]![1]), 'the README says the example password');

  const jwtConfig = load(blocks[1]!);
  const jwt = jwtConfig.routes[0]!.auth!.jwt!;
  assert.deepEqual(jwt.key, { kind: 'remote', url: 'https://id.example.com/.well-known/jwks.json', cache: 600_000, cooldown: 30_000, timeout: 5000 });
  assert.equal(jwt.leeway, 30);
  assert.deepEqual(jwt.claims_to_headers, [['sub', 'x-user-id'], ['email', 'x-user-email']]);
  assert.deepEqual(jwtConfig.rate_limits!.policies.per_user!.key, [{ kind: 'jwt_claim', name: 'sub' }]);

  const forward = load(blocks[2]!.replace(/^upstreams:\n/, '').replace(/^ {2}authz:.*\n/m, '')).routes[0]!.auth!.forward!;
  assert.deepEqual(forward, {
    upstream: 'authz',
    path: '/oauth2/auth',
    request_headers: ['cookie', 'authorization'],
    response_headers: ['x-auth-request-user', 'x-auth-request-email'],
    timeout: 2000,
    cache: { key: ['cookie'], ttl: 10_000 },
  });
});
