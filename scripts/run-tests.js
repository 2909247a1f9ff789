// Runs every compiled test file with node's own test runner. Node 20's `--test` takes no
// globs and would treat helpers under test/ as tests, so the files are listed explicitly.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const dirs = ['dist/test/unit', 'dist/test/integration'];
const files = [];
for (const dir of dirs) {
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    continue;
  }
  for (const name of names.sort()) if (name.endsWith('.test.js')) files.push(join(dir, name));
}
const filter = process.argv.slice(2);
const selected = filter.length ? files.filter((f) => filter.some((p) => f.includes(p))) : files;
if (selected.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
