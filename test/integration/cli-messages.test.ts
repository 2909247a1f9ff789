// What the CLI says about a config and about its own life (issue #11, point 6): plurals, the
// start-up banner's paths, and a last log line after "shutting down".
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, serve, tempDir, writeFile } from '../helpers/cli.js';
import { startUpstream } from '../helpers/upstream.js';

const LIMIT = { timeout: 120_000 };

test('validate: "1 route, 1 upstream", "2 routes, 0 upstreams", "1 error"', LIMIT, async (t) => {
  const dir = tempDir(t);
  const one = writeFile(join(dir, 'one.yaml'), 'listeners: [{ address: 127.0.0.1:0 }]\nupstreams: { app: { servers: [http://127.0.0.1:1] } }\nroutes: [{ upstream: app }]\n');
  assert.equal((await runCli(['validate', '-c', one])).stdout, `${one}: valid (1 route, 1 upstream)\n`);
  const two = writeFile(join(dir, 'two.yaml'), 'listeners: [{ address: 127.0.0.1:0 }]\nroutes: [{ match: { path: /a }, respond: {} }, { respond: {} }]\n');
  assert.equal((await runCli(['validate', '-c', two])).stdout, `${two}: valid (2 routes, 0 upstreams)\n`);
  const bad = writeFile(join(dir, 'bad.yaml'), 'listeners: [{ address: 127.0.0.1:0 }]\nroutes: [{ upstream: nope }]\n');
  assert.match((await runCli(['validate', '-c', bad])).stderr, /: invalid \(1 error\)\n$/);
});

test('serve: the banner prints exact and regex paths as written; "stopped" with counts is the last log line', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const file = writeFile(
    join(tempDir(t), 'usher.yaml'),
    [
      'listeners: [{ address: 127.0.0.1:0 }]',
      'log: { access_log: true }',
      `upstreams: { app: { servers: [${up.url}] } }`,
      'routes:',
      '  - { name: users, match: { host: api.test, path: { regex: "^/users/[0-9]+$" } }, upstream: app }',
      '  - { name: health, match: { path: { exact: /healthz } }, respond: { body: "ok" } }',
      '  - { name: api, match: { path: /api }, upstream: app }',
      '  - { name: rest, upstream: app }',
      '',
    ].join('\n'),
  );
  const { cli, port } = await serve(t, ['--config', file]);
  assert.match(cli.stderr, new RegExp(`\\n  route users: api\\.test ~ \\^/users/\\[0-9\\]\\+\\$ → app \\(${up.url}\\)\\n`));
  assert.match(cli.stderr, /\n {2}route health: \* = \/healthz → respond 200\n/);
  assert.match(cli.stderr, /\n {2}route api: \*\/api → app /);
  assert.match(cli.stderr, /\n {2}route rest: \*\/ → app /);

  // Two requests, each on its own connection.
  for (const path of ['/healthz', '/api/x']) {
    const status = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 200, path);
  }
  // The access-log line is written when usher counts the request as done.
  await cli.until(() => cli.logs().filter((l) => 'request_id' in l).length === 2, 'two access-log lines');
  cli.signal('SIGTERM');
  const exit = await cli.waitForExit();
  assert.equal(exit.code, 0, cli.output());
  const logs = cli.logs().filter((l) => !('request_id' in l));
  const last = logs.at(-1)!;
  assert.equal(last.msg, 'stopped', cli.output());
  assert.equal(last.requests, 2);
  assert.equal(last.connections, 2);
  assert.equal(last.requests_cut, 0);
  assert.equal(logs.at(-2)?.msg, 'shutting down');
});
