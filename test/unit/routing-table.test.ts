import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainRoute } from '../../src/router/explain.js';
import { HostPathRouter, normalisePath, RouteRequest, splitHost } from '../../src/router/index.js';
import { config } from '../helpers/usher.js';

/** The routes of `routes` (upstream "app" everywhere unless the route says otherwise), compiled. */
function router(routes: Record<string, unknown>[]) {
  const cfg = config({ upstreams: { app: { servers: ['http://127.0.0.1:1'] } }, routes: routes.map((r) => ({ upstream: 'app', ...r })) });
  return new HostPathRouter(cfg.routes.map((rc) => ({ config: rc, route: rc.name })));
}

interface Req {
  method?: string;
  host?: string;
  path: string;
  headers?: Record<string, string>;
  ip?: string;
}

function rq(r: Req): RouteRequest {
  const [host, port] = splitHost(r.host);
  const q = r.path.indexOf('?');
  const raw = q < 0 ? r.path : r.path.slice(0, q);
  const headers = Object.entries(r.headers ?? {}).flat();
  return new RouteRequest(host, port, normalisePath(raw)!, q < 0 ? '' : r.path.slice(q + 1), r.method ?? 'GET', headers, r.ip ?? '192.0.2.10', 'http');
}

/** Checks the compiled fast path and the slow `usher explain` walk: both must pick `expected`. */
function check(r: HostPathRouter<string>, table: [Req, string | undefined][]): void {
  for (const [req, expected] of table) {
    assert.equal(r.route(rq(req)), expected, JSON.stringify(req));
    assert.equal(explainRoute(r.candidates, rq(req)).winner?.route, expected, `explain: ${JSON.stringify(req)}`);
  }
}

test('hosts: exact, wildcard, list; case-insensitive; port ignored unless given', () => {
  const r = router([
    { name: 'exact', match: { host: 'api.example.test' } },
    { name: 'exact-port', match: { host: 'api.example.test:8443' } },
    { name: 'wild', match: { host: '*.example.test' } },
    { name: 'deeper-wild', match: { host: '*.eu.example.test' } },
    { name: 'list', match: { host: ['a.test', 'b.test'] } },
    { name: 'any' },
  ]);
  check(r, [
    [{ host: 'api.example.test', path: '/' }, 'exact'],
    [{ host: 'API.Example.TEST:80', path: '/' }, 'exact'],
    [{ host: 'api.example.test.', path: '/' }, 'exact'],
    [{ host: 'api.example.test.:8443', path: '/' }, 'exact-port'],
    [{ host: 'api.example.test:8443', path: '/' }, 'exact-port'],
    [{ host: 'www.example.test', path: '/' }, 'wild'],
    [{ host: 'x.eu.example.test', path: '/' }, 'deeper-wild'],
    [{ host: 'example.test', path: '/' }, 'any'],
    [{ host: 'b.test:9000', path: '/' }, 'list'],
    [{ host: 'api.example.test:08443', path: '/' }, 'exact-port'],
    [{ path: '/' }, 'any'],
  ]);
});

test('paths: prefix on a segment boundary, exact, regex; exact > regex > longest prefix', () => {
  const r = router([
    { name: 'api', match: { path: '/api' } },
    { name: 'api-v1', match: { path: { prefix: '/api/v1' } } },
    { name: 'users-exact', match: { path: { exact: '/api/v1/users' } } },
    { name: 'user-id', match: { path: { regex: '^/api/v1/users/[0-9]+$' } } },
    { name: 'slash', match: { path: '/dir/' } },
    { name: 'root', match: { path: '/' } },
  ]);
  check(r, [
    [{ path: '/api' }, 'api'],
    [{ path: '/apix' }, 'root'],
    [{ path: '/api/v1' }, 'api-v1'],
    [{ path: '/api/v1/users' }, 'users-exact'],
    [{ path: '/api/v1/users/' }, 'api-v1'],
    [{ path: '/api/v1/users/42' }, 'user-id'],
    [{ path: '/api/v1/users/42?x=1' }, 'user-id'],
    [{ path: '/api/v1/users/abc' }, 'api-v1'],
    [{ path: '/dir' }, 'root'],
    [{ path: '/dir/' }, 'slash'],
    [{ path: '/dir/x' }, 'slash'],
    [{ path: '/API' }, 'root'],
    // ";params" do not count for matching (Tomcat, Jetty and Spring strip them).
    [{ path: '/api;jsessionid=1' }, 'api'],
    [{ path: '/api;v=1/v1;x/users' }, 'users-exact'],
    [{ path: '/api/v1/users/42;y' }, 'user-id'],
    [{ path: '/;x/dir/x' }, 'slash'],
  ]);
});

test('method, headers (exact, regex, present, absent), query, cookies, client_ip (v4 and v6)', () => {
  const r = router([
    { name: 'post', match: { path: '/m', method: ['POST', 'PUT'] } },
    { name: 'get', match: { path: '/m', method: 'GET' } },
    { name: 'canary', match: { path: '/h', headers: { 'X-Canary': '1' } } },
    { name: 'mobile', match: { path: '/h', headers: { 'user-agent': { regex: 'Mobile|Android' } } } },
    { name: 'authed', match: { path: '/h', headers: { authorization: { present: true } } } },
    { name: 'anon', match: { path: '/h', headers: { authorization: { present: false } } } },
    { name: 'beta-q', match: { path: '/q', query: { beta: 'yes' } } },
    { name: 'flag-q', match: { path: '/q', query: { flag: { present: true } } } },
    { name: 'ab-b', match: { path: '/c', cookies: { ab: 'b' } } },
    { name: 'ab-any', match: { path: '/c', cookies: { ab: { regex: '^[a-z]$' } } } },
    { name: 'lan', match: { path: '/ip', client_ip: ['10.0.0.0/8', '2001:db8::/32'] } },
    { name: 'one', match: { path: '/ip', client_ip: '192.0.2.10' } },
    { name: 'fallback' },
  ]);
  check(r, [
    [{ method: 'PUT', path: '/m' }, 'post'],
    [{ method: 'GET', path: '/m' }, 'get'],
    [{ method: 'DELETE', path: '/m' }, 'fallback'],
    [{ path: '/h', headers: { 'x-canary': '1', authorization: 'x' } }, 'canary'],
    [{ path: '/h', headers: { 'X-CANARY': '2', 'User-Agent': 'Foo Android 14' } }, 'mobile'],
    [{ path: '/h', headers: { authorization: 'Bearer t' } }, 'authed'],
    [{ path: '/h' }, 'anon'],
    [{ path: '/q?beta=yes' }, 'beta-q'],
    [{ path: '/q?beta=no&flag' }, 'flag-q'],
    [{ path: '/q?betas=yes' }, 'fallback'],
    [{ path: '/c', headers: { cookie: 'x=1; ab=b' } }, 'ab-b'],
    [{ path: '/c', headers: { cookie: 'ab=a' } }, 'ab-any'],
    [{ path: '/c', headers: { cookie: 'ab=ab' } }, 'fallback'],
    [{ path: '/ip', ip: '10.20.30.40' }, 'lan'],
    [{ path: '/ip', ip: '::ffff:10.1.1.1' }, 'lan'],
    [{ path: '/ip', ip: '2001:db8:1::5' }, 'lan'],
    [{ path: '/ip', ip: '192.0.2.10' }, 'one'],
    [{ path: '/ip', ip: '2001:db9::1' }, 'fallback'],
  ]);
});

test('priority overrides specificity; ties keep specificity, then file order', () => {
  const r = router([
    { name: 'specific', match: { host: 'a.test', path: '/api/v1' } },
    { name: 'maintenance', priority: 10, match: { path: '/api', headers: { 'x-maint': { present: true } } } },
    { name: 'first', match: { path: '/x' } },
    { name: 'second', match: { path: '/x' } },
    { name: 'low', priority: -1, match: { host: 'a.test', path: '/api/v1/deep' } },
  ]);
  check(r, [
    [{ host: 'a.test', path: '/api/v1/users' }, 'specific'],
    [{ host: 'a.test', path: '/api/v1/users', headers: { 'x-maint': '1' } }, 'maintenance'],
    [{ path: '/x' }, 'first'],
    [{ host: 'a.test', path: '/api/v1/deep' }, 'specific'],
  ]);
});

test('10,000 routes: every host × prefix pair goes to its own route', () => {
  const routes: Record<string, unknown>[] = [];
  for (let h = 0; h < 100; h++) for (let p = 0; p < 100; p++) routes.push({ name: `h${h}p${p}`, match: { host: `host${h}.test`, path: `/svc${p}` } });
  routes.push({ name: 'fallback' });
  const r = router(routes);
  for (const [h, p] of [[0, 0], [57, 63], [99, 99], [12, 3]] as const) assert.equal(r.match(`host${h}.test`, `/svc${p}/users`), `h${h}p${p}`);
  assert.equal(r.match('host1.test', '/svc100'), 'fallback');
  assert.equal(r.match('nohost.test', '/svc1'), 'fallback');
});

test('path normalisation: unreserved decoding, dot segments, merged slashes; unsafe targets refused', () => {
  const table: [string, string | undefined][] = [
    ['/admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/%41DMIN', '/ADMIN'],
    ['//admin', '/admin'],
    ['/x/../admin', '/admin'],
    ['/./admin', '/admin'],
    ['/x/%2e%2e/admin', '/admin'],
    ['/x/%2E./admin/', '/admin/'],
    ['/../../admin', '/admin'],
    ['/a/b/..', '/a/'],
    ['/a%20b', '/a%20b'],
    ['/a%c3%a9', '/a%C3%A9'],
    ['/.well-known/x', '/.well-known/x'],
    ['/admin%2fx', undefined],
    ['/admin%5Cx', undefined],
    ['/admin\\x', undefined],
    ['/admin%00', undefined],
    ['/bad%zz', undefined],
    ['/bad%4', undefined],
    ['admin', undefined],
  ];
  for (const [input, expected] of table) assert.equal(normalisePath(input), expected, input);
  assert.equal(normalisePath('/a%2fb%5c/./c', true), '/a%2Fb%5C/c', 'keepEncodedSlashes: ordinary characters');
  assert.equal(normalisePath('/a%00', true), undefined);
});
