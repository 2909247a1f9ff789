// The package as a user gets it: `npm pack`, then `npm install ./usher-proxy-X.tgz` into an
// empty folder outside the checkout, `npx usher serve -c x.yaml` in front of a real upstream, and
// a JS config that imports `usher-proxy/config`. Dependencies come from npm's cache
// (--prefer-offline); the registry is asked only for what the cache lacks.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, tempDir } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };

/** The environment of a user's shell: none of the npm_* settings of the `npm test` that runs us. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: userEnv(), timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

test('npm pack → npm install into an empty folder → npx usher serve proxies; a config imports usher-proxy/config', { timeout: 240_000 }, async (t) => {
  assert.notEqual(pkg.name, 'usher', 'the npm name "usher" belongs to another package');
  assert.equal(pkg.bin.usher, 'bin/usher.js', 'the command is usher');
  const tmp = tempDir(t);
  // --ignore-scripts: `npm test` has just built dist/; prepack would build it again under the
  // other tests (a build never removes dist/, but there is no need).
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], repoRoot);
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes('bin/usher.js') && files.includes('dist/src/cli/main.js') && files.includes('dist/src/config/index.js'), files.join('\n'));
  assert.deepEqual(files.filter((f) => /^(src|test|bench|scripts)\/|^dist\/(test|bench)\/|\.map$|tsbuildinfo/.test(f)), [], 'sources, tests and maps stay out');

  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "private": true }\n');
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(tmp, info.filename)], app);
  assert.ok(existsSync(join(app, 'node_modules', pkg.name, 'dist', 'src', 'cli', 'main.js')));

  const up = await startUpstream('from-upstream');
  t.after(() => up.close());
  writeFileSync(
    join(app, 'x.yaml'),
    `listeners: [{ address: 127.0.0.1:0 }]\nupstreams: { app: { servers: [${up.url}] } }\nroutes: [{ upstream: app }]\n`,
  );
  writeFileSync(
    join(app, 'x.mjs'),
    `import { defineConfig } from '${pkg.name}/config';\nexport default defineConfig({ listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['${up.url}'] } }, routes: [{ upstream: 'app' }] });\n`,
  );

  const validated = await run('npx', ['usher', 'validate', '-c', 'x.mjs'], app);
  assert.equal(validated.stdout, 'x.mjs: valid (1 route, 1 upstream)\n');

  // The config is typed: the package's declarations reach a TypeScript config, and a wrong
  // shape is a type error (tsc is the checkout's: the empty folder has none).
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const typed = (body: string) => `import { defineConfig } from '${pkg.name}/config';\nexport default defineConfig(${body});\n`;
  writeFileSync(join(app, 'good.mts'), typed(`{ listeners: [{ address: '127.0.0.1:0' }], routes: [{ respond: { status: 204 } }] }`));
  writeFileSync(join(app, 'bad.mts'), typed(`{ listeners: [{ adress: '127.0.0.1:0' }] }`));
  const tscArgs = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--types', 'node', '--typeRoots', join(repoRoot, 'node_modules', '@types')];
  await run(process.execPath, [tsc, ...tscArgs, 'good.mts'], app);
  await assert.rejects(run(process.execPath, [tsc, ...tscArgs, 'bad.mts'], app), /bad\.mts\(2,\d+\): error TS\d+:.*adress/);

  // detached: npx runs usher as its child; the signal goes to the whole group this test started.
  const child = spawn('npx', ['usher', 'serve', '-c', 'x.yaml', '--workers', '1'], { cwd: app, env: userEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within 60 s:\n${stderr}`)), 60_000);
    const look = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stderr.on('data', look);
    child.on('close', () => reject(new Error(`usher exited before listening:\n${stderr}`)));
  });
  const r = await request(`http://127.0.0.1:${port}/through`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'from-upstream');
  assert.equal(up.requests.at(-1)?.url, '/through');
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
  // npx itself dies of the signal; usher's own last word says it shut down cleanly.
  const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as { msg: string; requests: number };
  assert.equal(last.msg, 'stopped', stdout);
  assert.equal(last.requests, 1);
});
