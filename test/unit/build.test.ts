// `npm run build` (scripts/build.js) never removes dist/ (tests and a running usher read it), does
// nothing when nothing changed, and removes outputs whose source is gone. Runs right after a
// build, as `npm test` and `npm run build && node scripts/run-tests.js build` do.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/cli.js';

test('build: dist/ is there throughout, up-to-date outputs are not rewritten, stale ones are removed', { timeout: 120_000 }, async () => {
  const main = join(repoRoot, 'dist/src/cli/main.js');
  const before = statSync(main).mtimeMs;
  const staleDir = join(repoRoot, 'dist/src/zz-removed-module');
  mkdirSync(staleDir, { recursive: true });
  for (const f of ['old.js', 'old.js.map']) writeFileSync(join(staleDir, f), '// its source is gone\n');
  const staleTop = join(repoRoot, 'dist/src/zz-removed.js');
  writeFileSync(staleTop, '// its source is gone\n');

  const child = spawn(process.execPath, [join(repoRoot, 'scripts/build.js')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  let done = false;
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => ((done = true), resolve(code))));
  // Looked at on every turn of the event loop while the build runs.
  let missing = 0;
  let looks = 0;
  while (!done) {
    looks++;
    if (!existsSync(main)) missing++;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(await exit, 0, output);
  assert.ok(looks > 1);
  assert.equal(missing, 0, 'dist/src/cli/main.js was missing during the build');
  assert.equal(statSync(main).mtimeMs, before, 'nothing changed, so nothing was rewritten');
  assert.equal(existsSync(staleTop), false);
  assert.equal(existsSync(staleDir), false, 'a directory left empty goes too');
});
