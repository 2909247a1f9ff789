// The deployment files (issue #16 pt 5), checked without a Docker engine or systemd as PID 1:
// - the Dockerfile: what it COPYs from the context exists and passes .dockerignore; the runtime
//   stage runs as a user it creates (not root) and starts the launcher it copied; the runtime
//   installs production dependencies only, so every package the compiled code imports must be
//   a production dependency (a dev one would crash the container at its first import);
// - its HEALTHCHECK script against a real usher's admin API (0) and a closed port (1);
// - the systemd unit's ExecStart run as written (binary and paths mapped into a temp dir),
//   ExecReload's signal reloading it, KillSignal draining it to exit 0.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { builtinModules } from 'node:module';
import { test } from 'node:test';
import { Cli, repoRoot, tempDir, writeFile } from '../helpers/cli.js';
import { freePort } from '../helpers/pebble.js';

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

/** Instructions with continuation lines joined and comments dropped; each names its stage. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = '';
  const logical = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of logical) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line not understood: ${line}`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage = / AS (\S+)$/i.exec(m[2]!)?.[1] ?? m[2]!;
    out.push({ op, args: m[2]!, stage });
  }
  return out;
}

/** .dockerignore as Docker applies it: the last matching pattern wins, "!" re-includes. */
function ignored(path: string, patterns: string[]): boolean {
  let out = false;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    const pat = (negate ? p.slice(1) : p).replace(/\/$/, '');
    const re = new RegExp(`^${pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\0/g, '.*')}(/.*)?$`);
    if (re.test(path)) out = !negate;
  }
  return out;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

test('Dockerfile: COPY sources exist and pass .dockerignore, non-root runtime user, the launcher and config paths, production dependencies cover every import', () => {
  const docker = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages = [...new Set(docker.map((i) => i.stage))].filter((s) => s !== ''); // '': the ARGs before the first FROM
  assert.deepEqual(stages, ['build', 'deps', 'runtime'], 'multi-stage: build, production dependencies, runtime');

  // Every COPY from the context: the source exists, and .dockerignore lets it (all of it) in.
  const copies = docker.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
  assert.ok(copies.length >= 5);
  for (const c of copies) {
    const parts = c.args.split(/\s+/);
    for (const src of parts.slice(0, -1)) {
      const path = join(repoRoot, src);
      assert.ok(existsSync(path), `COPY ${src}: no such file in the repository`);
      const inside = statSync(path).isDirectory() ? files(path).map((f) => relative(repoRoot, f)) : [src];
      for (const f of inside) assert.equal(ignored(f, ignore), false, `COPY ${src}: ${f} is excluded by .dockerignore`);
    }
  }
  // What the build stage compiles: tsc's rootDir/outDir put src/ at dist/src/, which the runtime copies.
  const ts = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
  assert.deepEqual([ts.compilerOptions.rootDir, ts.compilerOptions.outDir], ['.', 'dist']);
  const runtime = docker.filter((i) => i.stage === 'runtime');
  assert.ok(runtime.some((i) => i.op === 'COPY' && /^--from=build \/src\/dist\/src\/? dist\/src\/?$/.test(i.args)));
  assert.ok(runtime.some((i) => i.op === 'COPY' && /^--from=deps \/app\/node_modules\/? node_modules\/?$/.test(i.args)));
  assert.ok(docker.some((i) => i.stage === 'deps' && i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.args)), 'the runtime gets production dependencies only');

  // The runtime user: created in the image, not root, set before the entrypoint.
  const users = runtime.filter((i) => i.op === 'USER').map((i) => i.args.trim());
  assert.equal(users.length, 1);
  const user = users[0]!;
  assert.ok(!['root', '0'].includes(user.split(':')[0]!), `runs as ${user}`);
  assert.ok(runtime.some((i) => i.op === 'RUN' && new RegExp(`useradd [^&]*\\b${user}\\b`).test(i.args)), `user ${user} is created`);
  assert.ok(runtime.findIndex((i) => i.op === 'USER') < runtime.findIndex((i) => i.op === 'ENTRYPOINT'));

  // PID 1 forwards signals; the launcher it starts is the one copied to WORKDIR; the config is read from /etc/usher.
  const entry = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  const workdir = runtime.filter((i) => i.op === 'WORKDIR').at(-1)!.args.trim();
  assert.equal(entry[0], '/usr/bin/tini');
  assert.ok(runtime.some((i) => i.op === 'RUN' && /apt-get install [^&]*\btini\b/.test(i.args)));
  const launcher = entry.find((a) => a.endsWith('usher.js'))!;
  assert.equal(launcher, `${workdir}/bin/usher.js`);
  assert.ok(existsSync(join(repoRoot, 'bin', 'usher.js')));
  const cmd = JSON.parse(runtime.find((i) => i.op === 'CMD')!.args) as string[];
  assert.deepEqual(cmd.slice(0, 2), ['serve', '--config']);
  assert.match(cmd[2]!, /^\/etc\/usher\//);
  const health = runtime.find((i) => i.op === 'HEALTHCHECK')!.args;
  const script = /"(\/app\/deploy\/[^"]+)"/.exec(health)![1]!;
  assert.ok(runtime.some((i) => i.op === 'COPY' && i.args.startsWith(`${relative('/app', script)} `)), `${script} is copied`);

  // Production dependencies cover every package the compiled code imports at run time
  // (type-only imports are erased by tsc, so they do not count).
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const builtins = new Set(builtinModules);
  const needed = new Map<string, string>();
  for (const f of files(join(repoRoot, 'src')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"./][^'"]*)['"]|import\(\s*['"]([^'"./][^'"]*)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      needed.set(name, relative(repoRoot, f));
    }
  }
  assert.ok(needed.has('ioredis') && needed.has('yaml'), `the scan finds imports: ${[...needed.keys()].join(', ')}`);
  for (const [name, where] of needed) assert.ok(name in pkg.dependencies, `${where} imports ${name}, which is not a production dependency: the image would not have it`);
});

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 20_000 }, (err, _stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr }));
  });
}

test('the HEALTHCHECK script: 0 when usher\'s admin API answers, 1 with the reason when nothing listens', async (t) => {
  const dir = tempDir(t);
  const admin = await freePort();
  const file = writeFile(join(dir, 'usher.yaml'), `listeners: [{ address: 127.0.0.1:0 }]\nadmin: { address: 127.0.0.1:${admin}, token: "a-token-of-16-chars+" }\nroutes: [{ respond: { body: ok } }]\n`);
  const cli = new Cli(['serve', '--config', file]);
  t.after(() => cli.kill());
  await cli.until(() => /admin API on/.test(cli.stderr), 'the admin banner line', 30_000);
  const script = join(repoRoot, 'deploy', 'healthcheck.js');
  const url = `http://127.0.0.1:${admin}/status`;
  assert.equal((await run(process.execPath, [script], { USHER_HEALTHCHECK_URL: url, USHER_HEALTHCHECK_TOKEN: 'a-token-of-16-chars+' })).code, 0);
  const noToken = await run(process.execPath, [script], { USHER_HEALTHCHECK_URL: url, USHER_HEALTHCHECK_TOKEN: '' });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /answered 401/);
  const dead = await freePort();
  const down = await run(process.execPath, [script], { USHER_HEALTHCHECK_URL: `http://127.0.0.1:${dead}/status` });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /ECONNREFUSED/);
});

/** systemd's unit syntax, enough for [Service]: key → values in order (a key may repeat). */
function unitService(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    assert.ok(kv, `unit line not understood: ${line}`);
    if (section !== 'Service') continue;
    out.set(kv[1]!, [...(out.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

test('usher.service: hardening present; ExecStart serves, ExecReload\'s signal reloads, KillSignal drains to exit 0', async (t) => {
  const unit = unitService(readFileSync(join(repoRoot, 'deploy', 'usher.service'), 'utf8'));
  const one = (k: string) => {
    const v = unit.get(k);
    assert.equal(v?.length, 1, `${k} is set once`);
    return v[0]!;
  };
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.ok(Number(one('LimitNOFILE')) >= 65_536);
  assert.ok(!['root', '0'].includes(one('User')));
  assert.equal(unit.get('MemoryDenyWriteExecute'), undefined, "V8's JIT needs W+X memory");
  // ProtectSystem=strict: usher writes only to the directories the unit grants (state, logs).
  assert.equal(one('StateDirectory'), 'usher');

  // The commands as written, with the installed binary mapped to this checkout's launcher and
  // /etc/usher to a temp dir.
  const dir = tempDir(t);
  const port = await freePort();
  writeFile(join(dir, 'usher.yaml'), `listeners: [{ address: 127.0.0.1:${port} }]\nroutes: [{ respond: { body: first } }]\n`);
  const argv = (line: string) => {
    const words = line.replaceAll('/etc/usher', dir).split(/\s+/);
    assert.equal(words[0], '/usr/local/bin/usher');
    return words.slice(1);
  };
  const pre = argv(one('ExecStartPre'));
  const validate = await run(process.execPath, [join(repoRoot, 'bin', 'usher.js'), ...pre], {});
  assert.equal(validate.code, 0, validate.stderr);
  const cli = new Cli(argv(one('ExecStart')));
  t.after(() => cli.kill());
  await cli.until(() => /listening on/.test(cli.stderr), 'the banner', 30_000);
  const get = async () => (await fetch(`http://127.0.0.1:${port}/`)).text();
  assert.equal(await get(), 'first');

  // ExecReload: "/bin/kill -HUP $MAINPID" — the signal it names, to the main process.
  const reload = /^\/bin\/kill -(\w+) \$MAINPID$/.exec(one('ExecReload'));
  assert.ok(reload, one('ExecReload'));
  // The file is left as it is (saving it would reload it by itself): the reload is the signal's.
  assert.equal(cli.messages(/^config reloaded$/).length, 0);
  cli.signal(`SIG${reload[1]!}` as NodeJS.Signals);
  const done = await cli.until(() => cli.messages(/^config reloaded$/)[0], 'the reload', 30_000);
  assert.equal(done.file, join(dir, 'usher.yaml'));
  assert.equal(await get(), 'first');

  cli.signal(one('KillSignal') as NodeJS.Signals);
  const exit = await cli.waitForExit(20_000);
  assert.deepEqual(exit, { code: 0, signal: null });
});

test('README "Running several instances": its example config is valid as written', async () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Running several instances'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  assert.match(yaml, /store: shared/);
  assert.match(yaml, /storage:\n\s+redis:/);
  const { loadConfigText } = await import('../../src/config/index.js');
  const r = loadConfigText(yaml, 'usher.yaml', { USHER_ACME_KEY: 'sixteen or more characters' });
  assert.equal(r.ok, true, JSON.stringify(!r.ok && r.errors));
  if (r.ok) {
    assert.equal(typeof r.config.acme?.storage, 'object');
    assert.equal(r.config.rate_limits?.stores.shared?.url, 'redis://10.0.0.5:6379/0');
  }
});
