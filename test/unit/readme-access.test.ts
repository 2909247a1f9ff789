// The README's access-list, CORS and security-headers examples are valid configs that mean what
// the text says, and its `usher explain` lines are what explain prints for them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explainRequest } from '../../src/cli/explain.js';
import { formatIssues, loadConfigText } from '../../src/config/index.js';
import { Runtime } from '../../src/server/runtime.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Access lists, CORS and security headers'), readme.indexOf('## Upstreams'));
const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
const upstreams = 'upstreams:\n  admin: { servers: [http://127.0.0.1:3001] }\n  api: { servers: [http://127.0.0.1:3002] }\n  app: { servers: [http://127.0.0.1:3003] }\n';

function load(yaml: string) {
  const text = yaml.includes('listeners:') ? `${upstreams}${yaml}` : `listeners: [{ address: 0 }]\n${upstreams}${yaml}`;
  const r = loadConfigText(text, 'README.md', {});
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  return r.config;
}

test('the README access, CORS and security headers examples are valid and mean what the text says', () => {
  assert.equal(blocks.length, 3);
  const [access, cors, security] = blocks.map(load) as [ReturnType<typeof load>, ReturnType<typeof load>, ReturnType<typeof load>];
  assert.deepEqual(access.listeners[0]!.access, { rules: [{ action: 'deny', cidr: '203.0.113.0/24' }], default: 'allow' });
  assert.equal(access.routes[0]!.access!.default, 'deny');
  assert.equal(cors.routes[0]!.cors!.max_age, 600);
  assert.deepEqual(security.listeners[0]!.security_headers!.fields.map(([n]) => n), ['x-content-type-options', 'x-frame-options', 'referrer-policy']);
  assert.equal(security.routes[0]!.security_headers!.upstream, 'keep');

  const { runtime } = Runtime.build(access);
  const e = explainRequest(runtime, 'GET', 'http://host/admin', { scheme: 'http', authority: 'host', path: '/admin' }, ['Host', 'host', 'X-Forwarded-For', '10.9.1.1'], '10.0.0.10');
  const lines = (e.access ?? []).map((a) => `access: ${a.scope}: client ${a.client} ${a.decision === 'allow' ? 'allowed' : 'denied'} by "${a.rule}", ${a.effect}`);
  for (const line of lines) assert.ok(section.includes(line), `the README shows ${JSON.stringify(line)}`);
  assert.equal(lines.length, 2);
});
