// The real CLI (`node bin/usher.js`), spawned as a child process: commands, exit codes, the
// issue's example config, the built-in demo and the access log.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli, serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';

/** Backstop for every test: a request that never settles must not hang the run. */
const LIMIT = { timeout: 120_000 };

/** The example from the issue, verbatim. It is only validated, never bound. */
const EXAMPLE = readFileSync(new URL('../../../test/fixtures/config/example.yaml', import.meta.url), 'utf8');

/** The example with a listener on port 0 and the servers of real test upstreams. */
function example(server1: string, server2: string, extra = ''): string {
  return (
    EXAMPLE.replace('127.0.0.1:8080', '127.0.0.1:0').replace('http://127.0.0.1:3001', server1).replace('http://127.0.0.1:3002', server2) + extra
  );
}

test('--help: exit 0, lists the commands, options and exit codes', LIMIT, async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const s of ['usher serve', 'usher validate', 'usher explain', '--config', '--help', '--version', 'SIGTERM', 'SIGHUP']) {
    assert.ok(r.stdout.includes(s), `--help mentions ${s}:\n${r.stdout}`);
  }
  for (const code of ['0', '1', '2', '3', '70']) {
    assert.match(r.stdout, new RegExp(`^\\s+${code}\\s+\\S`, 'm'), `--help explains exit code ${code}`);
  }
});

test('--version: exit 0, the version from package.json', LIMIT, async () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^usher ${pkg.version.replaceAll('.', '\\.')}\\b`));
});

test('usage errors exit 2: unknown command, unknown option, --listen with --config, validate without --config', LIMIT, async () => {
  const cmd = await runCli(['frobnicate']);
  assert.equal(cmd.code, 2);
  assert.match(cmd.stderr, /unknown command "frobnicate"/);

  const opt = await runCli(['serve', '--bogus']);
  assert.equal(opt.code, 2);
  assert.match(opt.stderr, /--bogus/);

  const both = await runCli(['serve', '--config', 'usher.yaml', '--listen', '127.0.0.1:0']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--listen applies to the built-in demo/);

  const missing = await runCli(['validate']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--config FILE is required/);
});

test('validate: the issue example, exactly as written, is valid', LIMIT, async (t) => {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), EXAMPLE);
  const r = await runCli(['validate', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid \(3 routes, 1 upstream\)/);
});

test('validate: an invalid config exits 1 with file:line:col, the path and a did-you-mean', LIMIT, async (t) => {
  const text = EXAMPLE.replace(/^listeners:/m, 'listners:').replace(/upstream: app\n$/, 'upstream: ap\n');
  assert.notEqual(text, EXAMPLE);
  const file = writeFile(join(tempDir(t), 'usher.yaml'), text);
  const r = await runCli(['validate', '--config', file]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n');
  assert.ok(lines.includes(`${file}:1:1: error: listners: unknown key "listners" (did you mean "listeners"?)`), r.stderr);
  assert.ok(lines.includes(`${file}:13:15: error: routes[2].upstream: no upstream named "ap" (did you mean "app"?)`), r.stderr);
  assert.match(r.stderr, /invalid \(2 errors\)/);
});

test('serve --config: the example routes behave as the issue says', LIMIT, async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const file = writeFile(join(tempDir(t), 'usher.yaml'), example(a.url, b.url));
  const { cli, url } = await serve(t, ['--config', file]);
  assert.match(cli.stderr, new RegExp(`serving ${file}`));

  // host example.test + /api → app, round robin over both servers
  const api: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await request(`${url}/api/users`, { headers: { host: 'example.test' } });
    assert.equal(r.status, 200);
    api.push(r.body);
  }
  assert.deepEqual(api.sort(), ['a', 'a', 'b', 'b']);
  assert.ok(a.requests.concat(b.requests).every((r) => r.url === '/api/users' && r.headers.host === 'example.test'));

  // /admin → 403 "forbidden\n" from usher itself, whatever the host
  for (const host of ['example.test', 'other.test']) {
    const admin = await request(`${url}/admin`, { headers: { host } });
    assert.equal(admin.status, 403);
    assert.equal(admin.body, 'forbidden\n');
  }
  assert.equal(a.requests.length + b.requests.length, 4, '/admin never reaches the upstreams');

  // anything else → app, round robin
  const rest: string[] = [];
  for (const [host, path] of [['other.test', '/api'], ['example.test', '/apix'], ['other.test', '/'], ['x.test', '/admins']] as const) {
    const r = await request(`${url}${path}`, { headers: { host } });
    assert.equal(r.status, 200, `${host}${path}`);
    rest.push(r.body);
  }
  assert.deepEqual(rest.sort(), ['a', 'a', 'b', 'b']);

  // stdout carries JSON logs only; the banner went to stderr
  assert.ok(cli.logs().some((l) => l.msg === 'usher started'), cli.output());
});

test('serve --config with an invalid config exits 1 and says why', LIMIT, async (t) => {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), EXAMPLE.replace(/upstream: app\n$/, 'upstream: ap\n'));
  const r = await runCli(['serve', '--config', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /routes\[2\]\.upstream: no upstream named "ap" \(did you mean "app"\?\)/);
  assert.doesNotMatch(r.stderr, /listening on/);
});

test('serve --config with a missing file exits 1', LIMIT, async (t) => {
  const r = await runCli(['serve', '--config', join(tempDir(t), 'nope.yaml')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /nope\.yaml/);
});

test('serve: a listener address already in use exits 3 with a clear message', LIMIT, async (t) => {
  const a = await startUpstream('a');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    await a.close();
  });
  const port = (taken.address() as AddressInfo).port;
  const file = writeFile(join(tempDir(t), 'usher.yaml'), example(a.url, a.url).replace('127.0.0.1:0', `127.0.0.1:${port}`));
  const r = await runCli(['serve', '--config', file]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot start: address 127\\.0\\.0\\.1:${port} is already in use`));
});

test('the built-in demo: serve --listen 127.0.0.1:0 spreads requests over the demo upstreams', LIMIT, async (t) => {
  const { cli, url } = await serve(t, ['--listen', '127.0.0.1:0']);
  assert.match(cli.stderr, /built-in demo/);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const names = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await request(`${url}/hello`, { agent });
    assert.equal(r.status, 200);
    const m = /^Hello from (demo-\d)!/.exec(r.body);
    assert.ok(m, r.body);
    names.add(m[1]!);
  }
  assert.deepEqual([...names].sort(), ['demo-1', 'demo-2', 'demo-3']);
});

test('access log: one JSON line per request on stdout with the documented fields', LIMIT, async (t) => {
  const a = await startUpstream('a');
  t.after(() => a.close());
  const file = writeFile(join(tempDir(t), 'usher.yaml'), example(a.url, a.url, 'log: { access_log: true }\n'));
  const { cli, url } = await serve(t, ['--config', file]);

  const ok = await request(`${url}/api/x?y=1`, { method: 'POST', headers: { host: 'example.test' }, body: 'hello' });
  const denied = await request(`${url}/admin`, { headers: { host: 'other.test' } });
  assert.equal(ok.status, 200);
  assert.equal(denied.status, 403);

  const access = await cli.until(() => {
    const lines = cli.logs().filter((l) => 'request_id' in l);
    return lines.length >= 2 ? lines : undefined;
  }, 'two access-log lines');
  assert.equal(access.length, 2, 'exactly one line per request');
  const [first, second] = access as [Record<string, unknown>, Record<string, unknown>];

  for (const line of access) {
    for (const key of ['request_id', 'client', 'method', 'host', 'path', 'status', 'bytes_in', 'bytes_out', 'duration_ms']) {
      assert.ok(key in line, `access-log line has ${key}: ${JSON.stringify(line)}`);
    }
    assert.equal(line.client, '127.0.0.1');
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok((line.bytes_in as number) > 0 && (line.bytes_out as number) > 0, JSON.stringify(line));
  }
  assert.equal(first.request_id, ok.headers['x-request-id']);
  assert.equal(first.method, 'POST');
  assert.equal(first.host, 'example.test');
  assert.equal(first.path, '/api/x?y=1');
  assert.equal(first.status, 200);
  assert.equal(first.upstream, a.url);
  assert.ok((first.bytes_in as number) > 'hello'.length, 'bytes_in counts the request head and body');
  assert.ok(first.reason === undefined || first.reason === null, `a proxied 200 has no failure reason: ${JSON.stringify(first)}`);

  assert.equal(second.request_id, denied.headers['x-request-id']);
  assert.equal(second.method, 'GET');
  assert.equal(second.path, '/admin');
  assert.equal(second.status, 403);
  assert.equal(second.reason, 'local_response');
  assert.ok(second.upstream === undefined || second.upstream === null, 'a respond route has no upstream');
});
