// The access log (issue #15 pt 5): formats (JSON, nginx's combined and common, templates), a
// file reopened on SIGUSR1 and POST /reopen-logs (logrotate: rename, then signal), and what
// happens when the disk is full or the file's directory vanishes: serving goes on, drops count.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigObject } from '../../src/config/index.js';
import { admin } from '../helpers/admin.js';
import { serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

type T = { after: (fn: () => Promise<void> | void) => void };

async function withLog(t: T, log: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestUsher> {
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ name: 'main', match: { path: '/app' }, upstream: 'app' }], log: { level: 'warn', access_log: true, ...log }, ...extra });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return u;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

async function linesOf(u: TestUsher, file: string, n: number): Promise<string[]> {
  await u.usher.accessLog!.flush();
  await waitFor(() => lines(file).length >= n, 5000, `${n} lines in ${file}`);
  return lines(file);
}

// nginx's combined: $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
const COMBINED = /^(\S+) - - \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$/;

test('combined and common, as nginx writes them, to a file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'access.log');
  const u = await withLog(t, { access_log_format: 'combined', access_log_file: file });
  await request(`${u.url}/app/x?y=1`, { headers: { referer: 'http://example.test/', 'user-agent': 'curl/8 "quoted"' } });
  await request(`${u.url}/nothing`);
  const [a, b] = await linesOf(u, file, 2);
  const m = COMBINED.exec(a!);
  assert.ok(m, a);
  assert.equal(m[1], '127.0.0.1');
  assert.equal(m[3], 'GET /app/x?y=1 HTTP/1.1');
  assert.equal(m[4], '200');
  assert.ok(Number(m[5]) > 0);
  assert.equal(m[6], 'http://example.test/');
  assert.equal(m[7], 'curl/8 \\x22quoted\\x22', 'a quote in a field is escaped as nginx does');
  const n = COMBINED.exec(b!);
  assert.ok(n, b);
  assert.equal(n[4], '404');
  assert.equal(n[6], '-');
  assert.equal(n[7], '-');
  // The time is the request's, in local time with its offset.
  const now = new Date();
  assert.ok(m[2]!.startsWith(`${String(now.getDate()).padStart(2, '0')}/`), m[2]);

  const file2 = join(dir, 'common.log');
  const v = await withLog(t, { access_log_format: 'common', access_log_file: file2 });
  await request(`${v.url}/app`);
  const [c] = await linesOf(v, file2, 1);
  assert.match(c!, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/app HTTP\/1\.1" 200 \d+$/);
});

test('a template of named fields, with request headers and "-" for what is missing', async (t) => {
  const file = join(tempDir(t), 'a.log');
  const u = await withLog(t, { access_log_format: '{{ {method} {path} {status} route={route} up={upstream} {attempts} {reason} {request_id} {header.x-client} {trace_id} {protocol} {duration_ms}', access_log_file: file });
  const r = await request(`${u.url}/app`, { headers: { 'x-client': 'c1' } });
  await request(`${u.url}/none`);
  const [a, b] = await linesOf(u, file, 2);
  const up = u.config.upstreams.app!.servers[0]!.url;
  assert.match(a!, new RegExp(`^\\{ GET /app 200 route=main up=${up.replace(/[.:/]/g, '\\$&')} 1 - ${r.headers['x-request-id']} c1 - HTTP/1\\.1 \\d+\\.\\d{3}$`));
  assert.match(b!, /^\{ GET \/none 404 route=- up=- 0 no_route \S+ - - HTTP\/1\.1 /);
});

test('JSON lines to a file have every field, trace_id among them', async (t) => {
  const file = join(tempDir(t), 'a.log');
  const u = await withLog(t, { access_log_file: file });
  await request(`${u.url}/app`);
  const [a] = await linesOf(u, file, 1);
  const j = JSON.parse(a!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(j), ['level', 'time', 'request_id', 'client', 'client_address', 'method', 'host', 'path', 'status', 'bytes_in', 'bytes_out', 'duration_ms', 'route', 'upstream', 'attempts', 'reason', 'trace_id']);
  assert.equal(j.status, 200);
  assert.equal(j.trace_id, null);
});

test('logrotate: rename the file, send SIGUSR1, and usher writes to a new file at the path', async (t) => {
  const dir = tempDir(t);
  const up = await startUpstream('app');
  t.after(() => up.close());
  const file = join(dir, 'access.log');
  const config = writeFile(join(dir, 'usher.yaml'), `listeners: [{ address: "127.0.0.1:0" }]
upstreams: { app: { servers: ["${up.url}"] } }
routes: [{ upstream: app }]
log: { level: info, access_log: true, access_log_format: common, access_log_file: access.log }
`);
  const s = await serve(t, ['--config', config]);
  await request(`${s.url}/one`);
  await s.cli.until(() => lines(file).length === 1, 'the first line');
  renameSync(file, `${file}.1`);
  // Until the signal, lines go to the renamed file (its descriptor is still open).
  await request(`${s.url}/two`);
  await s.cli.until(() => lines(`${file}.1`).length === 2, 'the second line in the renamed file');
  s.cli.signal('SIGUSR1');
  await s.cli.until(() => s.cli.messages(/^log files reopened$/).length === 1, 'the reopen');
  await request(`${s.url}/three`);
  await s.cli.until(() => lines(file).length === 1, 'a line in the new file');
  assert.match(lines(file)[0]!, /"GET \/three HTTP\/1\.1" 200/);
  assert.deepEqual(lines(`${file}.1`).map((l) => /"GET (\S+)/.exec(l)![1]), ['/one', '/two']);
  s.cli.signal('SIGTERM');
  assert.equal((await s.cli.waitForExit()).code, 0);
});

test('POST /reopen-logs reopens the file; a reopen that fails (the directory is gone) keeps serving and counts the error', async (t) => {
  const dir = join(tempDir(t), 'logs');
  mkdirSync(dir);
  const file = join(dir, 'access.log');
  const u = await withLog(t, { access_log_format: 'common', access_log_file: file }, { admin: { address: '127.0.0.1:0' } });
  await request(`${u.url}/app/1`);
  await linesOf(u, file, 1);
  renameSync(file, `${file}.1`);
  const r = await admin(u, 'POST', '/reopen-logs');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { reopened: [file] });
  await waitFor(() => existsSync(file), 5000, 'the new file');
  await request(`${u.url}/app/2`);
  assert.match((await linesOf(u, file, 1))[0]!, /GET \/app\/2 /);

  rmSync(dir, { recursive: true, force: true });
  assert.equal((await admin(u, 'POST', '/reopen-logs')).status, 200);
  await waitFor(() => u.usher.accessLog!.counts.errors >= 1, 5000, 'the reopen error');
  for (let i = 0; i < 3; i++) assert.equal((await request(`${u.url}/app/3`)).status, 200);
  await waitFor(() => u.logs.some((l) => /^access log: write failed/.test(String(l.msg))), 5000, 'the error in the process log');
  const status = await admin(u, 'GET', '/status');
  assert.equal(status.json.access_log.file, file);
  assert.ok(status.json.access_log.errors >= 1, 'sonic-boom tries the open twice');
  // Lines still go to the old (deleted) file: nothing is dropped.
  assert.equal(status.json.access_log.dropped, 0);
});

test('a full disk (/dev/full: every write fails with ENOSPC): requests are served, lines beyond the buffer are dropped and counted, one error line a minute', async (t) => {
  const u = await withLog(t, { access_log_format: '{request_id} {path} {status} padding-padding-padding-padding', access_log_file: '/dev/full', access_log_buffer: '1kb' });
  for (let i = 0; i < 40; i++) assert.equal((await request(`${u.url}/app/${i}`)).status, 200);
  const c = u.usher.accessLog!.counts;
  assert.equal(c.lines, 40);
  await waitFor(() => u.usher.accessLog!.counts.errors > 0, 5000, 'write errors');
  assert.ok(c.dropped > 0 && c.dropped < 40, `dropped ${c.dropped}`);
  await waitFor(() => u.logs.some((l) => /^access log:/.test(String(l.msg))), 5000, 'the error in the process log');
  assert.equal(u.logs.filter((l) => /^access log:/.test(String(l.msg))).length, 1);
});

test('config: a template with an unknown field or none at all is an error; settings without access_log are a warning', () => {
  const r = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], log: { access_log: true, access_log_format: '{client} {nope}' } }, '<test>');
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.errors.some((e) => e.path === 'log.access_log_format' && /unknown field \{nope\}/.test(e.message) && /\{trace_id\}/.test(e.hint ?? '')));
  const r2 = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], log: { access_log: true, access_log_format: 'combinedd' } }, '<test>');
  assert.ok(!r2.ok && r2.errors.some((e) => e.path === 'log.access_log_format' && /not a format name/.test(e.message)));
  const r3 = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], log: { access_log_file: '/tmp/x.log' } }, '<test>');
  assert.ok(r3.ok && r3.warnings.some((w) => w.path === 'log.access_log_file' && /no effect/.test(w.message)));
});

test('access_log_sample: successes are written at the given share, every error and refusal always', async (t) => {
  const none = join(tempDir(t), 'none.log');
  const u = await withLog(t, { access_log_format: '{status} {path}', access_log_file: none, access_log_sample: 0 });
  for (let i = 0; i < 20; i++) assert.equal((await request(`${u.url}/app/${i}`)).status, 200);
  assert.equal((await request(`${u.url}/nothing`)).status, 404);
  // The 404 is the only line; the 20 successes are counted as left out.
  assert.deepEqual(await linesOf(u, none, 1), ['404 /nothing']);
  assert.equal(u.usher.accessLog!.counts.sampled_out, 20);
  assert.equal(u.usher.accessLog!.counts.lines, 1);

  const half = join(tempDir(t), 'half.log');
  const v = await withLog(t, { access_log_format: '{status} {path}', access_log_file: half, access_log_sample: 0.5 });
  for (let i = 0; i < 400; i++) await request(`${v.url}/app/${i}`);
  await v.usher.accessLog!.flush();
  const written = v.usher.accessLog!.counts.lines;
  assert.equal(written + v.usher.accessLog!.counts.sampled_out, 400);
  // Binomial(400, 0.5): 200 ± 10 standard deviations.
  assert.ok(written > 100 && written < 300, `${written} of 400 written at 0.5`);
  assert.equal((await linesOf(v, half, written)).length, written);
});

test('config: access_log_sample is a share from 0 to 1', () => {
  const r = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], log: { access_log: true, access_log_sample: 1.5 } }, '<test>');
  assert.ok(!r.ok && r.errors.some((e) => e.path === 'log.access_log_sample'), JSON.stringify(r));
  const ok = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], log: { access_log: true, access_log_sample: 0.25 } }, '<test>');
  assert.ok(ok.ok && ok.config.log.access.sample === 0.25);
});
