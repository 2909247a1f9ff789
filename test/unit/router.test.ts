import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteConfig } from '../../src/config/types.js';
import { HostPathRouter, prefixMatches, routingHost } from '../../src/router/index.js';

function route(index: number, hosts: string[], path?: string): { config: RouteConfig; route: string } {
  const config: RouteConfig = {
    name: `routes[${index}]`,
    index,
    match: path === undefined ? { hosts } : { hosts, path },
    upstream: 'app',
    source: { file: 't.yaml', line: index + 1, column: 1 },
  };
  return { config, route: config.name };
}

test('prefix matches on a segment boundary', () => {
  const cases: [string, string, boolean][] = [
    ['/api', '/api', true],
    ['/api', '/api/', true],
    ['/api', '/api/v1', true],
    ['/api', '/apix', false],
    ['/api', '/ap', false],
    ['/api/', '/api/x', true],
    ['/api/', '/api', false],
    ['', '/anything', true],
  ];
  for (const [prefix, path, expected] of cases) assert.equal(prefixMatches(prefix, path), expected, `${prefix} vs ${path}`);
});

test('routing host: lower case, port stripped, IPv6 brackets kept', () => {
  assert.equal(routingHost('Example.TEST:8080'), 'example.test');
  assert.equal(routingHost('example.test'), 'example.test');
  assert.equal(routingHost('[::1]:8080'), '[::1]');
  assert.equal(routingHost(undefined), '');
});

test('the issue example: exact host over none, longest path, ties in file order, catch-all', () => {
  const r = new HostPathRouter([route(0, ['example.test'], '/api'), route(1, [], '/admin'), route(2, [])]);
  const table: [string, string, string | undefined][] = [
    ['example.test', '/api', 'routes[0]'],
    ['example.test', '/api/users', 'routes[0]'],
    ['example.test', '/apix', 'routes[2]'],
    ['other.test', '/api', 'routes[2]'],
    ['example.test', '/admin', 'routes[1]'],
    ['other.test', '/admin/x', 'routes[1]'],
    ['other.test', '/', 'routes[2]'],
  ];
  for (const [host, path, expected] of table) assert.equal(r.match(host, path), expected, `${host}${path}`);
});

test('exact host beats wildcard beats no host, even with a longer path elsewhere', () => {
  const r = new HostPathRouter([
    route(0, [], '/a/b/c'),
    route(1, ['*.example.test'], '/a'),
    route(2, ['www.example.test'], '/a'),
    route(3, ['*.test']),
  ]);
  assert.equal(r.match('www.example.test', '/a/b/c'), 'routes[2]');
  assert.equal(r.match('api.example.test', '/a/b/c'), 'routes[1]');
  assert.equal(r.match('api.example.test', '/z'), 'routes[3]', 'the longer wildcard has no matching path; the shorter one does');
  assert.equal(r.match('example.test', '/a/b/c'), 'routes[3]', '*.example.test does not match the apex');
  assert.equal(r.match('other.org', '/a/b/c/d'), 'routes[0]');
  assert.equal(r.match('other.org', '/z'), undefined);
});

test('equal specificity goes to file order', () => {
  const r = new HostPathRouter([route(0, [], '/x'), route(1, [], '/x'), route(2, ['a.test', 'b.test'], '/y')]);
  assert.equal(r.match('h', '/x'), 'routes[0]');
  assert.equal(r.match('b.test', '/y/z'), 'routes[2]');
});
