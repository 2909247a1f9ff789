// `usher plan` and `usher apply` through the real CLI against a running `usher serve` (its admin
// listener, found from the banner), over real sockets.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';

const LIMIT = { timeout: 120_000 };

function file(adminAddress: string, routes: string): string {
  return `listeners:\n  - address: 127.0.0.1:0\nadmin:\n  address: ${adminAddress}\nroutes:\n${routes}`;
}

const OLD = '  - name: old\n    match: { path: /old }\n    respond: { status: 200, body: old }\n';
const NEW = '  - name: new\n    match: { path: /new }\n    respond: { status: 200, body: new }\n';

test('usher plan and usher apply: the diff, validate\'s errors, apply refused then applied', LIMIT, async (t) => {
  const dir = tempDir(t);
  const served = writeFile(join(dir, 'usher.yaml'), file('127.0.0.1:0', OLD));
  const s = await serve(t, ['--config', served]);
  const port = Number(await s.cli.until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)?.[1], 'the admin line of the banner'));
  const admin = `127.0.0.1:${port}`;
  // Found from the file's own admin section.
  const next = writeFile(join(dir, 'next.yaml'), file(admin, NEW));
  const plan = await runCli(['plan', '-c', next]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(
    plan.stdout,
    'would change:\n  + route new\n  - route old\n  ~ admin\nwould end:\n' +
      '  route old: removed: its long-lived connections (WebSockets, SSE streams, gRPC calls) end by its drain policy: closed gracefully after 30s, cut 10s later\n',
  );
  const json = await runCli(['plan', '-c', next, '--admin', admin, '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).changes.routes.added, ['new']);
  // Invalid: the same file:line:col errors as validate, nothing sent, nothing changed.
  const bad = writeFile(join(dir, 'bad.yaml'), file(admin, '  - name: x\n    upstream: nowhere\n'));
  const validate = await runCli(['validate', '-c', bad]);
  const refused = await runCli(['apply', '-c', bad]);
  assert.equal(refused.code, 1);
  assert.ok(refused.stderr.startsWith(validate.stderr.split('\n')[0]!), refused.stderr);
  assert.match(refused.stderr, /bad\.yaml:7:15: error: routes\[0\]\.upstream: no upstream named "nowhere"/);
  assert.equal((await request(`${s.url}/old`)).body, 'old');
  // Applied.
  const applied = await runCli(['apply', '-c', next]);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /^applied:\n {2}\+ route new\n/);
  assert.equal((await request(`${s.url}/new`)).body, 'new');
  assert.equal((await request(`${s.url}/old`)).status, 404);
  // Again: nothing left to change.
  assert.equal((await runCli(['plan', '-c', next])).stdout, 'no changes\n');
  // Nobody listening: exit 3, said in words.
  const gone = await runCli(['plan', '-c', next, '--admin', '127.0.0.1:1']);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/);
});

test('usher plan: the token comes from --token or USHER_ADMIN_TOKEN; a wrong one exits 3', LIMIT, async (t) => {
  const dir = tempDir(t);
  const token = 'cli-test-token-0123456789';
  const served = writeFile(join(dir, 'usher.yaml'), `listeners:\n  - address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\n  token: ${token}\nroutes:\n${OLD}`);
  const s = await serve(t, ['--config', served]);
  const port = Number(await s.cli.until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+) \(bearer token\)/.exec(s.cli.stderr)?.[1], 'the admin line of the banner'));
  const next = writeFile(join(dir, 'next.json'), JSON.stringify({ listeners: [{ address: '127.0.0.1:0' }], routes: [] }));
  const denied = await runCli(['plan', '-c', next, '--admin', `127.0.0.1:${port}`, '--token', 'wrong-token-wrong-token']);
  assert.equal(denied.code, 3);
  assert.match(denied.stderr, /refused the token/);
  const ok = await runCli(['plan', '-c', next, '--admin', `127.0.0.1:${port}`, '--token', token]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /- route old/);
});
