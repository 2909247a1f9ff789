import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssues, loadConfigText } from '../../src/config/index.js';
import { brief, type Brief } from '../helpers/issues.js';

const HEAD = 'listeners: [{ address: 8080 }]\nupstreams:\n  app: { servers: [http://127.0.0.1:3001] }\n  canary: { servers: [http://127.0.0.1:3002] }\nroutes:\n';

function errors(routes: string): Brief[] {
  const r = loadConfigText(HEAD + routes, 'usher.yaml', {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : brief(r.errors);
}

function warnings(routes: string): Brief[] {
  const r = loadConfigText(HEAD + routes, 'usher.yaml', {});
  assert.equal(r.ok, true, r.ok ? '' : formatIssues(r.errors));
  return brief(r.warnings);
}

test('routing config errors point at the value, say what was expected', () => {
  assert.deepEqual(
    errors(`  - match: { path: { regex: "^/(a" } }
    upstream: app
  - match: { path: { exact: /a, prefix: /b } }
    upstream: app
  - match: { headers: { x-a: { regex: "[" } }, client_ip: [10.0.0.0/33] }
    upstream: app
  - split: [{ upstream: app, weight: 9 }, { upstream: canry }]
    sticky_key: { cookie: ab }
  - upstream: app
    sticky_key: client_ip
  - redirect: { to: "https://x/{nope}" }
  - redirect: { to: /a, https: true }
  - upstream: app
    respond: {}
    redirect: { https: true }
  - respond: {}
    rewrite: { strip_prefix: /a }
  - upstream: app
    request_headers: { set: { content-length: "1", x-a: "{header.x" } }
    mirror: { upstream: nope }
`),
    [
      [6, 29, 'routes[0].match.path.regex', 'invalid regular expression "^/(a": /^/(a/: Unterminated group'],
      [8, 20, 'routes[1].match.path', 'expected exactly one of "prefix", "exact" or "regex", found prefix and exact'],
      [10, 39, 'routes[2].match.headers.x-a.regex', 'invalid regular expression "[": /[/: Unterminated character class'],
      [10, 60, 'routes[2].match.client_ip[0]', 'expected an IP address or CIDR range like "10.0.0.0/8" or "::1/128", got "10.0.0.0/33"', 'the prefix length after "/" must be 0..32 for an IPv4 address'],
      [12, 55, 'routes[3].split[1].upstream', 'no upstream named "canry"', 'did you mean "canary"?'],
      [15, 5, 'routes[4].sticky_key', '"sticky_key" only applies to a "split"', 'remove it, or add "split:"'],
      [16, 21, 'routes[5].redirect.to', 'unknown placeholder {nope} in "https://x/{nope}"', 'placeholders: {client_ip}, {request_id}, {host}, {path}, {request_uri}, {query_string}, {scheme}, {header.NAME}, {cookie.NAME}, {query.NAME}'],
      [17, 15, 'routes[6].redirect', 'a redirect takes exactly one of "to" or "https: true"'],
      [18, 5, 'routes[7]', 'a route takes exactly one of "upstream", "split", "respond" or "redirect", found "upstream" and "respond" and "redirect"', 'split it into several routes, or remove all but one'],
      [22, 5, 'routes[8].rewrite', '"rewrite" applies to requests proxied to an upstream; this route answers them itself', 'move it to a route with "upstream" or "split"'],
      [24, 31, 'routes[9].request_headers.set.content-length', 'header "content-length" cannot be changed by a header rule: usher manages it', 'remove it'],
      [24, 57, 'routes[9].request_headers.set.x-a', 'unterminated "{" in "{header.x"', 'write {{ for a literal "{"'],
      [25, 25, 'routes[9].mirror.upstream', 'no upstream named "nope"', 'defined upstreams: app, canary'],
    ],
  );
});

test('validate warns about duplicate and shadowed routes, and only those', () => {
  assert.deepEqual(
    warnings(`  - { match: { path: /api }, upstream: app }
  - { match: { path: /api }, upstream: canary }
  - { priority: 5, match: { host: "*.example.test" }, upstream: app }
  - { match: { host: www.example.test, path: /x }, upstream: app }
  - { match: { path: /api, method: GET }, upstream: app }
  - { match: { path: /api/v1, method: GET }, upstream: app }
  - { match: { path: /api/v1, headers: { x-a: "1" } }, upstream: app }
  - { priority: 5, match: { host: b.test, path: /api }, upstream: canary }
`),
    [
      [7, 5, 'routes[1]', 'this route duplicates routes[0]: same priority and match, so it never matches', 'remove one, or make their matches differ'],
      [9, 5, 'routes[3]', 'this route can never match: routes[2] matches every request it would, and it has a higher priority (5 > 0)', 'reorder them, narrow the broader route, or raise this route\'s priority'],
      [10, 5, 'routes[4]', 'this route can never match: routes[0] matches every request it would, and it comes first in the file', 'reorder them, narrow the broader route, or raise this route\'s priority'],
    ],
  );
  assert.deepEqual(warnings('  - { match: { path: "/a//b/../%7Ec" }, upstream: app }\n  - { match: { path: { exact: /x/./y } }, upstream: canary }\n'), [
    [6, 22, 'routes[0].match.path', 'request paths are normalised before matching, so "/a//b/../%7Ec" matches as "/a/~c"', 'write "/a/~c"'],
    [7, 31, 'routes[1].match.path.exact', 'request paths are normalised before matching, so "/x/./y" matches as "/x/y"', 'write "/x/y"'],
  ]);
});

test('the routing options normalise with their defaults', () => {
  const r = loadConfigText(
    HEAD +
      `  - match: { path: { regex: "^/x" }, method: [GET, GET], headers: { X-A: { present: false } }, cookies: { ab: b }, client_ip: "::1" }
    split: [{ upstream: app, weight: 95 }, { upstream: canary }]
    sticky_key: { header: X-User }
    mirror: { upstream: canary }
    rewrite: { strip_prefix: /x }
    request_headers: { set: { X-A: v }, remove: [X-B, x-b] }
`,
    'usher.yaml',
    {},
  );
  assert.equal(r.ok, true, r.ok ? '' : formatIssues(r.errors));
  if (!r.ok) return;
  assert.deepEqual(r.warnings, [], 'upstreams used only by a split or a mirror are used');
  const route = r.config.routes[0]!;
  assert.deepEqual(route.match, { hosts: [], path_regex: '^/x', methods: ['GET'], headers: [{ name: 'x-a', present: false }], cookies: [{ name: 'ab', exact: 'b' }], client_ip: ['::1/128'] });
  assert.deepEqual(route.split, [{ upstream: 'app', weight: 95 }, { upstream: 'canary', weight: 1 }]);
  assert.deepEqual(route.sticky_key, { kind: 'header', name: 'x-user' });
  assert.deepEqual(route.mirror, { upstream: 'canary', percent: 100, max_body: 65536, max_concurrent: 16, timeout: 5000 });
  assert.deepEqual(route.request_headers, { set: [['x-a', 'v']], add: [], remove: ['x-b'] });
  assert.ok(Object.isFrozen(route.match.headers));
});
