import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssues, loadConfigText } from '../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the README "Upstreams" example is a valid upstream', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Upstreams'), readme.indexOf('## Operating usher'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(yaml !== undefined, 'the section has a yaml example');
  const r = loadConfigText(`listeners: [{ address: 0 }]\n${yaml}routes: [{ upstream: api }]\n`, 'README.md', {});
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  const api = r.config.upstreams.api!;
  assert.equal(api.balance, 'least_request');
  assert.deepEqual(api.servers.map((s) => [s.priority, s.backup]), [[0, false], [0, false], [1, false], [0, true]]);
  assert.equal(api.health_check?.fall, 3);
  assert.equal(api.retry.per_try_timeout, 2000);
  assert.equal(api.circuit_breaker?.max_pending, 100);
});
