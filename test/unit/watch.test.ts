import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchConfig } from '../../src/cli/watch.js';
import { waitFor } from '../helpers/usher.js';

test('watchConfig: a save caught half-way (an empty file) fires nothing; the finished save fires once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-watch-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, 'a: 1\n');
  let fired = 0;
  const w = watchConfig(file, () => fired++, 20);
  t.after(() => {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // What a reader sees between writeFile's truncate and its write.
  writeFileSync(file, '');
  // Asserting that nothing fired needs a wait: several debounce periods.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(fired, 0, 'an empty file is not a config change');
  writeFileSync(file, 'a: 2\n');
  await waitFor(() => fired === 1, 5000, 'the finished save');
  // Saving the same content again is no change.
  writeFileSync(file, 'a: 2\n');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(fired, 1);
});
