import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { hash32 } from '../../src/router/split.js';
import { runCli, serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';

const CONFIG = `listeners: [{ address: 8080 }]
upstreams:
  app: { servers: [http://127.0.0.1:3001, http://127.0.0.1:3002] }
  v2: { servers: [http://127.0.0.1:3003], host_header: upstream }
  canary: { servers: [http://127.0.0.1:3004] }
routes:
  - name: canary-users
    match: { host: api.example.test, path: /v1/users, headers: { x-canary: "1" } }
    upstream: canary
  - name: ab-b
    match: { host: api.example.test, path: /v1, cookies: { ab: b } }
    upstream: v2
    rewrite: { strip_prefix: /v1, add_prefix: /v2 }
    request_headers: { set: { x-user: "{cookie.user}" } }
  - name: api
    match: { host: api.example.test, path: /v1 }
    split: [{ upstream: app, weight: 95 }, { upstream: canary, weight: 5 }]
    sticky_key: { cookie: user }
    mirror: { upstream: canary, percent: 10 }
  - name: admin
    match: { path: /admin }
    respond: { status: 403 }
  - name: admin-api
    match: { path: /admin/api }
    priority: -1
    upstream: app
`;

const LIMIT = { timeout: 120_000 };

test('usher explain: the winning route with file:line, why more specific routes did not match, the upstream request', LIMIT, async (t) => {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), CONFIG);
  const r = await runCli(['explain', '--config', file, 'GET', 'http://api.example.test/v1/users', '-H', 'cookie: ab=b; user=ann']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^route: ab-b \\(${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:10:5\\)$`, 'm'));
  assert.match(r.stdout, /^ {2}- canary-users \(.*usher\.yaml:7:5\): header x-canary is absent, wanted "1"$/m);
  assert.match(r.stdout, /^filters: request_headers, rewrite_path$/m);
  assert.match(r.stdout, /^ {2}GET \/v2\/users$/m);
  assert.match(r.stdout, /^ {2}host: 127\.0\.0\.1:3003$/m);
  assert.match(r.stdout, /^ {2}x-user: ann$/m);
  assert.match(r.stdout, /^ {2}server: http:\/\/127\.0\.0\.1:3003$/m);
  assert.match(r.stdout, /^ {2}- api \(.*usher\.yaml:15:5\): host api\.example\.test, path \/v1$/m, 'the route it took the request from');

  const json = await runCli(['explain', '-c', file, 'get', 'http://api.example.test/v1/x/../users?q=1', '-H', 'Cookie: user=zed', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const e = JSON.parse(json.stdout) as Record<string, unknown> & { route: { name: string }; upstream: Record<string, unknown>; upstream_request: { target: string }; not_matched: { name: string; why: string }[] };
  assert.equal(e.outcome, 'proxy');
  assert.equal(e.route.name, 'api');
  assert.deepEqual((e.request as { normalised_path: string }).normalised_path, '/v1/users');
  assert.deepEqual(e.not_matched.map((n) => n.name), ['canary-users', 'ab-b']);
  assert.equal(e.not_matched[1]!.why, 'cookie ab is absent, wanted "b"');
  assert.equal(e.upstream_request.target, '/v1/users?q=1');
  assert.equal(e.upstream.chosen_by, 'split app 95 / canary 5, sticky key "zed"');
  // The side the running router picks for this key (its hash on the 95/5 ranges), not just either side.
  assert.equal(e.upstream.name, hash32('zed') % 100 < 95 ? 'app' : 'canary');
  assert.deepEqual(e.mirror, { upstream: 'canary', percent: 10 });
});

test('usher explain: unmatched, unsafe and shadowed requests; validate warns about the shadowed route', LIMIT, async (t) => {
  const file = writeFile(join(tempDir(t), 'usher.yaml'), CONFIG);
  const none = await runCli(['explain', '--config', file, 'GET', 'http://api.example.test/v2/users', '--json']);
  assert.equal(none.code, 0, none.stderr);
  const n = JSON.parse(none.stdout) as { outcome: string; status: number; not_matched: { name: string; why: string }[]; other_hosts: number };
  assert.equal(n.outcome, 'no_route');
  assert.equal(n.status, 404);
  assert.deepEqual(n.not_matched.map((x) => [x.name, x.why]), [
    ['canary-users', 'path /v2/users is not under the prefix /v1/users'],
    ['ab-b', 'path /v2/users is not under the prefix /v1'],
    ['api', 'path /v2/users is not under the prefix /v1'],
    ['admin', 'path /v2/users is not under the prefix /admin'],
    ['admin-api', 'path /v2/users is not under the prefix /admin/api'],
  ]);
  const text = await runCli(['explain', '--config', file, 'GET', 'http://other.test/nothing']);
  assert.match(text.stdout, /^no route matches: 404 no_route$/m);
  assert.match(text.stdout, /3 routes for other hosts not considered/);

  const lan = await runCli(['explain', '--config', file, '--client-ip', '10.1.2.3', '--json', 'GET', 'http://other.test/admin']);
  assert.equal((JSON.parse(lan.stdout) as { request: { client_ip: string } }).request.client_ip, '10.1.2.3');

  const unsafe = await runCli(['explain', '--config', file, 'GET', 'http://other.test/admin%2fapi']);
  assert.match(unsafe.stdout, /^400 unsafe_path/m);
  const badHost = await runCli(['explain', '--config', file, 'GET', 'http://other.test/admin', '-H', 'host: x@other.test']);
  assert.match(badHost.stdout, /^400 bad_request/m);
  const params = await runCli(['explain', '--config', file, 'GET', 'http://other.test/admin;jsessionid=1']);
  assert.match(params.stdout, /^route: admin \(/m, 'explain matches without ";params", as the router does');

  const shadowed = await runCli(['explain', '--config', file, 'GET', 'http://other.test/%61dmin/api/keys']);
  assert.match(shadowed.stdout, /^route: admin \(.*usher\.yaml:20:5\)$/m);
  assert.match(shadowed.stdout, /^responds: 403 \(respond\)$/m);
  assert.match(shadowed.stdout, /^also matched, but lost to the route above:\n {2}- admin-api \(.*usher\.yaml:23:5, priority -1\): path \/admin\/api$/m);

  const v = await runCli(['validate', '--config', file]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, /usher\.yaml:23:5: warning: routes\[4\]: route "admin-api" can never match: "admin" \(routes\[3\]\) matches every request it would, and it has a higher priority \(0 > -1\)/);
});

test('usher explain: usage errors exit 2, an invalid config exits 1', LIMIT, async (t) => {
  const dir = tempDir(t);
  assert.equal((await runCli(['explain', 'GET', 'http://x/'])).code, 2);
  assert.equal((await runCli(['explain', '--config', join(dir, 'x.yaml'), 'GET'])).code, 2);
  assert.equal((await runCli(['explain', '--config', join(dir, 'x.yaml'), 'GET', 'ftp://x/'])).code, 2);
  assert.equal((await runCli(['explain', '--config', join(dir, 'x.yaml'), '--client-ip', 'me', 'GET', 'http://x/'])).code, 2);
  const bad = writeFile(join(dir, 'bad.yaml'), 'listeners: [{ address: 8080 }]\nroutes: [{ upstream: nope }]\n');
  const r = await runCli(['explain', '--config', bad, 'GET', 'http://x/']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no upstream named "nope"/);
});

test('usher serve runs a config with splits and redirects (the banner names their actions)', LIMIT, async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const file = writeFile(
    join(tempDir(t), 'usher.yaml'),
    `listeners: [{ address: "127.0.0.1:0" }]
upstreams:
  a: { servers: [${a.url}] }
  b: { servers: [${b.url}] }
routes:
  - { match: { path: /old }, redirect: { to: "/new{path}", status: 302 } }
  - { split: [{ upstream: a, weight: 1 }, { upstream: b, weight: 1 }] }
`,
  );
  const s = await serve(t, ['--config', file]);
  assert.match(s.cli.stderr, /route routes\[0\]: \*\/old → redirect 302 \/new\{path\}/);
  assert.match(s.cli.stderr, /route routes\[1\]: \*\/ → split a 1 \/ b 1/);
  const r = await request(`${s.url}/old/x`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/new/old/x');
  const bodies = [(await request(`${s.url}/`)).body, (await request(`${s.url}/`)).body];
  assert.deepEqual(bodies.sort(), ['a', 'b']);
});

test('usher explain on 2,000 routes: the winner, and only the routes near this request listed', LIMIT, async (t) => {
  const lines = ['listeners: [{ address: 8080 }]', 'upstreams:', '  app: { servers: [http://127.0.0.1:3001] }', 'routes:'];
  for (let h = 0; h < 20; h++) for (let p = 0; p < 100; p++) lines.push(`  - { name: h${h}p${p}, match: { host: host${h}.test, path: /svc${p} }, upstream: app }`);
  lines.push('  - { name: beta, match: { host: host7.test, path: /svc42/v1, cookies: { beta: "1" } }, upstream: app }');
  const file = writeFile(join(tempDir(t), 'usher.yaml'), `${lines.join('\n')}\n`);
  const r = await runCli(['explain', '--config', file, 'GET', 'http://host7.test/svc42/v1/x']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^route: h7p42 /m);
  assert.match(r.stdout, /^ {2}- beta \(.*\): cookie beta is absent, wanted "1"$/m);
  assert.match(r.stdout, /^ {2}\(\d+ routes for other paths tried first, not listed\)$/m);
  assert.match(r.stdout, /^ {2}\(1900 routes for other hosts not considered\)$/m);
  assert.ok(r.stdout.split('\n').length < 25, r.stdout);
});
