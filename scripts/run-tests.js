// Runs every compiled test file with node's own test runner. Node 20's `--test` takes no
// globs and would treat helpers under test/ as tests, so the files are listed explicitly.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
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
// Every test gets a deadline, so that a hang fails with a name instead of stalling the run (on
// Node 24 a WebSocket-over-HTTP/2 test once hung in shutdown forever, issue 11). Node 24+ applies
// --test-timeout to each test (and hook): the slowest test takes about 8 s on an idle machine, so
// 60 s leaves room for two other suites on the same 2 cores. Node 20 and 22 also apply the
// timeout to each file's subprocess and kill it (measured with a hanging test: reported as
// "<file>: test timed out"), so there it is 360 s (the slowest files take 60-150 s when the
// machine is loaded: operations, with a dozen usher processes started and reloaded in turn).
// --test-force-exit is given nowhere: it ends a file before all its tests ran, silently (Node 22
// lost the last results of balancer-conformance under load, 21 of 25; Node 24.21 ran 25 to 31
// of h1-parser's 61 tests, with "pass" for the file). What ends a file whose timed-out test left
// sockets open is the watchdog below: a pass that outlives PASS_DEADLINE_MS is killed and fails.
const major = Number(process.versions.node.split('.')[0]);
const deadline = major >= 24 ? ['--test-timeout=60000'] : ['--test-timeout=360000'];
const PASS_DEADLINE_MS = 20 * 60_000;

// Issue #17: the native client (src/upstream/h1) is the default engine of HTTP/1.1 upstreams;
// the integration files that drive HTTP/1.1 upstreams run a second time on undici
// (USHER_UPSTREAM_ENGINE=undici, read where the default is decided:
// src/upstream/config/normalize.ts), which stays selectable per upstream. Left out of that pass:
// files whose upstreams are HTTP/2 (undici always) or that never proxy (CLI, config, ACME,
// certificates), and compress-1gib (a gigabyte through gzip: the compressor's time, not the
// client's; the 1 GiB stream without it is streaming-1gib, which does run), and
// waf-modsecurity-reference (the verdicts are taken before any upstream is asked, and two of its
// four tests run only nginx with ModSecurity: 70 s a pass).
// With USHER_UPSTREAM_ENGINE already set, one pass runs on that engine.
const ONE_ENGINE_ONLY = new Set([
  'acme-pebble', 'admin-cli', 'admin-config', 'cli-help', 'cli-messages', 'cli', 'compress-1gib', 'config-names',
  'grpc', 'grpc-reload', 'h1-request-differential', 'h2-upstream-tls', 'literal-maps', 'package-install', 'pipeline-grpc', 'reload-large', 'routing-explain',
  'tls-acme-parts', 'tls-cli', 'tls-sni-key-types', 'waf-modsecurity-reference',
]);
const base = (f) => f.slice(f.lastIndexOf('/') + 1).replace(/\.test\.js$/, '');
const passes = [{ engine: process.env.USHER_UPSTREAM_ENGINE ?? 'native', files: selected }];
if (process.env.USHER_UPSTREAM_ENGINE === undefined) {
  const second = selected.filter((f) => f.includes('/integration/') && !ONE_ENGINE_ONLY.has(base(f)));
  if (second.length > 0) passes.push({ engine: 'undici', files: second });
}
// Each pass also writes its failed tests to a file (scripts/test-failures.js), listed after the
// last pass: the run's tail names every failure of every pass, which is the part of a CI log
// that is kept. The usual reporter (spec on a terminal, TAP otherwise) still writes to stdout.
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const failuresDir = mkdtempSync(join(tmpdir(), 'usher-test-failures-'));
const summary = [];
let status = 0;
for (const pass of passes) {
  console.log(`node ${process.version}: ${pass.files.length} test files, default upstream engine ${pass.engine}`);
  const failuresFile = join(failuresDir, `${pass.engine}.jsonl`);
  const reporters = [
    `--test-reporter=${reporter}`, '--test-reporter-destination=stdout',
    `--test-reporter=${new URL('./test-failures.js', import.meta.url).href}`, `--test-reporter-destination=${failuresFile}`,
  ];
  const r = spawnSync(
    process.execPath,
    ['--test', '--test-concurrency=2', ...deadline, ...reporters, ...pass.files],
    { stdio: 'inherit', env: { ...process.env, USHER_UPSTREAM_ENGINE: pass.engine }, timeout: PASS_DEADLINE_MS, killSignal: 'SIGKILL' },
  );
  if (r.error !== undefined) summary.push(`${pass.engine} pass: did not finish within ${PASS_DEADLINE_MS / 60_000} min (a test left the process running?): ${r.error.message}`);
  if (r.status !== 0) status = r.status ?? 1;
  let lines = [];
  try {
    lines = readFileSync(failuresFile, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    // no file: the pass was killed before its reporter opened it
  }
  for (const line of lines) {
    const f = JSON.parse(line);
    // a parent that failed because a subtest did is named by that subtest's line already
    if (f.kind === 'subtestsFailed') continue;
    const file = typeof f.file === 'string' ? base(f.file) : '?';
    summary.push(`${pass.engine} pass: ${file} > ${f.name} [${f.kind ?? 'failed'}]: ${f.message}`);
  }
  if (r.status !== 0 && lines.length === 0 && r.error === undefined) summary.push(`${pass.engine} pass: exit ${r.status ?? r.signal}, no failed test reported`);
}
rmSync(failuresDir, { recursive: true, force: true });
if (summary.length > 0) console.log(`\nrun-tests: ${summary.length} failure(s) on node ${process.version}:\n${summary.map((s) => `  ${s}`).join('\n')}`);
else console.log(`\nrun-tests: every pass passed on node ${process.version}`);
process.exit(status);
