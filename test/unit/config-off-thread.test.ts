import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile } from '../../src/config/index.js';
import { loadConfigFileOffThread } from '../../src/config/load-off-thread.js';
import { ROUTES_PER_MESSAGE } from '../../src/config/transfer.js';
import { tempDir, writeFile } from '../helpers/cli.js';

// A reload loads the file in a worker thread and gets it back in slices (issue #11): what comes
// back must be exactly what loading on this thread gives — null-prototype tables, frozen — or the
// same errors.
test('loading off the thread gives exactly the result of loading here, for valid and invalid files', async (t) => {
  const dir = tempDir(t);
  const routes: string[] = [];
  for (let i = 0; i < ROUTES_PER_MESSAGE * 2 + 3; i++) routes.push(`  - { match: { path: /r${i} }, respond: { body: "${i}", headers: { __proto__: x, x-n: "${i}" } } }\n`);
  const valid = writeFile(
    join(dir, 'valid.yaml'),
    `listeners: [{ address: "127.0.0.1:0" }]\nupstreams:\n  __proto__: { servers: [http://127.0.0.1:1] }\nroutes:\n  - { upstream: __proto__ }\n${routes.join('')}  - { match: { path: /r1 }, respond: {} }\n`,
  );
  const here = await loadConfigFile(valid);
  const there = await loadConfigFileOffThread(valid);
  assert.equal(here.ok, true);
  assert.deepStrictEqual(there, here);
  assert.ok(there.ok && there.warnings.length === 1, 'the duplicate route is warned about');
  if (!there.ok) return;
  assert.equal(Object.getPrototypeOf(there.config.upstreams), null);
  assert.deepEqual(Object.keys(there.config.upstreams), ['__proto__']);
  assert.equal(Object.getPrototypeOf(there.config.routes[1]!.respond!.headers), null);
  assert.ok(Object.isFrozen(there.config) && Object.isFrozen(there.config.routes) && Object.isFrozen(there.config.routes[5]!.respond!.headers));

  const invalid = writeFile(join(dir, 'invalid.yaml'), 'listeners: [{ address: 8080 }]\nroutes: [{ upstream: nope }]\n');
  assert.deepStrictEqual(await loadConfigFileOffThread(invalid), await loadConfigFile(invalid));
  const missing = join(dir, 'missing.yaml');
  assert.deepStrictEqual(await loadConfigFileOffThread(missing), await loadConfigFile(missing));
});
