import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIssues, loadConfigFile, loadConfigText, type ConfigIssue } from '../../src/config/index.js';
import { brief, type Brief } from '../helpers/issues.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = join(root, 'test/fixtures/config');

function errors(text: string, file = 'usher.yaml'): Brief[] {
  const r = loadConfigText(text, file, {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : brief(r.errors);
}

function warnings(text: string): Brief[] {
  const r = loadConfigText(text, 'usher.yaml', {});
  assert.equal(r.ok, true, r.ok ? '' : formatIssues(r.errors));
  return brief(r.warnings);
}

const L = 'listeners: [{ address: 8080 }]\n';

test('YAML syntax errors are reported with their position, and nothing else is checked', () => {
  assert.deepEqual(errors(`${L}log: { level: info }\nlog: { level: debug }\n`), [[3, 1, '', 'invalid YAML: Map keys must be unique']]);
  // Nested and flow mappings too, and in JSON, at the repeated key (the first one found is reported).
  assert.deepEqual(errors(`${L}upstreams:\n  a: { servers: [http://x] }\n  a: { servers: [http://y], balance: random }\n`), [[4, 3, '', 'invalid YAML: Map keys must be unique']]);
  assert.deepEqual(errors(`${L}upstreams:\n  a: { servers: [http://y], balance: random, balance: hash }\n`), [[3, 46, '', 'invalid YAML: Map keys must be unique']]);
  assert.deepEqual(errors('{"listeners": [{"address": 8080}], "log": {}, "log": {}}', 'u.json'), [[1, 47, '', 'invalid JSON: Map keys must be unique']]);
  const unclosed = errors(`${L}routes: [\n  { upstream: app }\n`);
  assert.equal(unclosed.length >= 1, true);
  assert.equal(unclosed[0]?.[2], '');
  assert.match(unclosed[0]?.[3] ?? '', /^invalid YAML: /);
  assert.equal(unclosed[0]?.[0], 4);
});

test('unknown keys: position of the key, did-you-mean, or the keys allowed there', () => {
  assert.deepEqual(errors('listeners:\n  - address: 8080\n    tsl: { cert: a, key: b }\n'), [
    [3, 5, 'listeners[0].tsl', 'unknown key "tsl"', 'did you mean "tls"?'],
  ]);
  // The typo explains the missing "listeners"; it is not reported twice.
  assert.deepEqual(errors('listners:\n  - address: 8080\n'), [[1, 1, 'listners', 'unknown key "listners"', 'did you mean "listeners"?']]);
  assert.deepEqual(errors(`${L}log: { colour: true }\n`), [
    [2, 8, 'log.colour', 'unknown key "colour"', 'allowed here: level, access_log, access_log_format, access_log_file, access_log_sample, access_log_buffer'],
  ]);
});

test('missing required keys point at the mapping they are missing from', () => {
  assert.deepEqual(errors(`${L}upstreams:\n  app:\n    balance: round_robin\nroutes: [{ upstream: app }]\n`), [
    [4, 5, 'upstreams.app', 'missing required key "servers"'],
  ]);
  assert.deepEqual(errors('routes: []\n'), [[1, 1, '', 'missing required key "listeners"']]);
  assert.deepEqual(errors(''), [[1, 1, '', 'expected a mapping with at least "listeners", got an empty document']]);
});

test('a route naming an undefined upstream: did-you-mean, or the names there are', () => {
  const text = `${L}upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
  - upstream: app
  - upstream: ap
  - upstream: zzz
`;
  assert.deepEqual(errors(text), [
    [6, 15, 'routes[1].upstream', 'no upstream named "ap"', 'did you mean "app"?'],
    [7, 15, 'routes[2].upstream', 'no upstream named "zzz"', 'defined upstreams: app'],
  ]);
  const r = loadConfigText(text, 'usher.yaml', {});
  assert.equal(
    formatIssues(r.ok ? [] : r.errors),
    'usher.yaml:6:15: error: routes[1].upstream: no upstream named "ap" (did you mean "app"?)\n' +
      'usher.yaml:7:15: error: routes[2].upstream: no upstream named "zzz" (defined upstreams: app)',
  );
});

test('a route needs exactly one of upstream and respond', () => {
  const text = `${L}upstreams: { app: { servers: [http://a] } }
routes:
  - name: both
    upstream: app
    respond: { status: 204 }
  - match: { path: /x }
`;
  assert.deepEqual(errors(text), [
    [4, 5, 'routes[0]', 'a route takes exactly one of "upstream", "split", "respond" or "redirect", found "upstream" and "respond"', 'split it into several routes, or remove all but one'],
    [
      7,
      5,
      'routes[1]',
      'a route takes exactly one of "upstream", "split", "respond" or "redirect", found none',
      'add "upstream: <name>" to proxy the request, "split:" to divide it between upstreams, "respond:" to answer it directly, or "redirect:" to send the client elsewhere',
    ],
  ]);
});

test('server URLs must be http(s) origins', () => {
  const text = `${L}upstreams:
  app:
    servers:
      - ftp://files.example
      - http://127.0.0.1:3001/api
      - localhost:3000
      - { url: "http://user:pw@host" }
      - { url: "not a url" }
      - https://ok.example
routes: [{ upstream: app }]
`;
  assert.deepEqual(errors(text), [
    [5, 9, 'upstreams.app.servers[0]', 'expected an http:// or https:// URL, got "ftp://files.example"'],
    [
      6,
      9,
      'upstreams.app.servers[1]',
      'expected a URL without a path, query or fragment, got "http://127.0.0.1:3001/api"',
      'usher forwards the client\'s path as is; write "http://127.0.0.1:3001"',
    ],
    [7, 9, 'upstreams.app.servers[2]', 'expected a URL like "http://127.0.0.1:3001", got "localhost:3000"', 'add the scheme: "http://localhost:3000"'],
    [8, 16, 'upstreams.app.servers[3].url', 'expected a URL without user name or password, got "http://user:pw@host"'],
    [9, 16, 'upstreams.app.servers[4].url', 'expected a URL like "http://127.0.0.1:3001", got "not a url"', 'add the scheme: "http://not a url"'],
  ]);
});

test('listener addresses must parse, with a port in 0..65535', () => {
  const expected = 'expected an address like "127.0.0.1:8080", "[::1]:8080", ":8080" or a port number';
  const text = `listeners:
  - address: 127.0.0.1:65536
  - address: localhost
  - address: ::1:8080
  - address: "*:80"
  - address: 70000
  - address: "[::1]8080"
`;
  assert.deepEqual(errors(text), [
    [2, 14, 'listeners[0].address', `${expected}, got "127.0.0.1:65536"`, 'the port must be a number from 0 to 65535'],
    [3, 14, 'listeners[1].address', `${expected}, got "localhost"`, 'add a port: "localhost:8080"'],
    [4, 14, 'listeners[2].address', `${expected}, got "::1:8080"`, 'write IPv6 addresses in brackets: "[::1]:8080"'],
    [5, 14, 'listeners[3].address', `${expected}, got "*:80"`, 'for all interfaces write ":80"'],
    [6, 14, 'listeners[4].address', 'expected a whole number of at most 65535, got 70000'],
    [7, 14, 'listeners[5].address', `${expected}, got "[::1]8080"`, 'write an IPv6 address in brackets with a port: "[::1]:8080"'],
  ]);
});

test('duplicate listener addresses are errors; port 0 may repeat', () => {
  const text = `listeners:
  - address: 127.0.0.1:8080
  - address: 8081
  - address: "127.0.0.1:8080"
  - address: 0
  - address: 0
  - address: 0.0.0.0:8081
  - address: 127.0.0.1:8081
`;
  assert.deepEqual(errors(text), [
    [4, 14, 'listeners[2].address', 'duplicate listener address "127.0.0.1:8080": listeners[0] already listens on it'],
    [7, 14, 'listeners[5].address', 'duplicate listener address "0.0.0.0:8081": listeners[1] already listens on it'],
    [
      8,
      14,
      'listeners[6].address',
      'duplicate listener address "127.0.0.1:8081": listeners[1] already listens on 0.0.0.0 port 8081',
      '"0.0.0.0" covers every IPv4 address and "::" every address, so both cannot bind the port',
    ],
  ]);
});

test('trusted_proxies entries must be IPs or CIDRs', () => {
  const expected = 'expected an IP address or CIDR range like "10.0.0.0/8" or "::1/128"';
  assert.deepEqual(errors(`${L}proxy:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, 1.2.3, "::1/129", example.com, 7]\n`), [
    [3, 33, 'proxy.trusted_proxies[1]', `${expected}, got "10.0.0.0/33"`, 'the prefix length after "/" must be 0..32 for an IPv4 address'],
    [3, 46, 'proxy.trusted_proxies[2]', `${expected}, got "1.2.3"`],
    [3, 53, 'proxy.trusted_proxies[3]', `${expected}, got "::1/129"`, 'the prefix length after "/" must be 0..128 for an IPv6 address'],
    [3, 64, 'proxy.trusted_proxies[4]', `${expected}, got "example.com"`],
    [3, 77, 'proxy.trusted_proxies[5]', 'expected a string, got 7'],
  ]);
});

test('warnings: duplicate server URLs, unused upstreams, duplicate route names, bodies that are never sent', () => {
  const text = `${L}upstreams:
  app:
    servers: [http://127.0.0.1:3001, "http://127.0.0.1:3001/", http://127.0.0.1:3002]
  spare: { servers: [http://127.0.0.1:4000] }
routes:
  - { name: r, upstream: app }
  - { name: r, respond: { status: 204, body: gone } }
`;
  assert.deepEqual(warnings(text), [
    [4, 38, 'upstreams.app.servers[1]', 'duplicate server "http://127.0.0.1:3001/" (same as servers[0])', 'to send it a larger share of requests, raise its weight'],
    [5, 3, 'upstreams.spare', 'upstream "spare" is not used by any route'],
    [8, 5, 'routes[1]', 'route "r" duplicates "r" (routes[0]): same priority and match, so it never matches', 'remove one, or make their matches differ'],
    [8, 13, 'routes[1].name', 'duplicate route name "r" (same as routes[0])'],
    [8, 46, 'routes[1].respond.body', 'a 204 response has no body (RFC 9110 §15.3.5, §15.4.5); this body is never sent'],
  ]);
});

test('enums, types, ranges and patterns say what was expected and what was found', () => {
  const text = `${L}upstreams:
  app:
    servers: { url: http://a }
  web:
    servers: [{ url: http://b, weight: 0 }]
    balance: roundrobin
  "bad name!": { servers: [http://c] }
routes:
  - upstream: web
    match: { host: "a b", path: api }
  - respond: { status: 99, headers: { "x a": b, content-length: "3", x-ok: "a\\nb" } }
log: { level: infoo, access_log: "yes" }
`;
  assert.deepEqual(errors(text), [
    [4, 14, 'upstreams.app.servers', 'expected a list, got a mapping'],
    [6, 40, 'upstreams.web.servers[0].weight', 'expected a whole number of at least 1, got 0'],
    [7, 14, 'upstreams.web.balance', 'expected one of round_robin, least_request, least_conn, random, hash, sticky, got "roundrobin"', 'did you mean "round_robin"?'],
    [8, 3, 'upstreams["bad name!"]', 'invalid upstream name "bad name!": expected letters, digits, "_", "." and "-"'],
    [11, 20, 'routes[0].match.host', 'expected a host name like "example.com" or "*.example.com", optionally with ":port", got "a b"'],
    [11, 33, 'routes[0].match.path', 'expected a path starting with "/" (no spaces, "?" or "#"), got "api"'],
    [12, 24, 'routes[1].respond.status', 'expected a whole number of at least 200, got 99'],
    [12, 39, 'routes[1].respond.headers["x a"]', 'invalid header name "x a": expected letters, digits and !#$%&\'*+.^_`|~-'],
    [
      12,
      49,
      'routes[1].respond.headers.content-length',
      'header "content-length" cannot be set here: usher computes it from the body',
      'remove it',
    ],
    [12, 76, 'routes[1].respond.headers.x-ok', 'expected a header value without control characters such as line breaks, got "a\\nb"'],
    [13, 15, 'log.level', 'expected one of trace, debug, info, warn, error, fatal, silent, got "infoo"', 'did you mean "info"?'],
    [13, 34, 'log.access_log', 'expected true or false, got "yes"'],
  ]);
});

test('durations and sizes in a config: the value, what a valid one looks like, and a hint', () => {
  const text = `${L}timeouts:
  request_header: 5 parsecs
  keep_alive: "60"
  body_idle: -1
  graceful_shutdown: 600h
limits: { body: 10 parsecs, header_size: [1], request_line: null }
`;
  assert.deepEqual(errors(text), [
    [3, 19, 'timeouts.request_header', 'expected a duration like "5s" or "250ms", got "5 parsecs"', 'units: ms, s, m, h; combine them as in "1m30s"'],
    [
      4,
      15,
      'timeouts.keep_alive',
      'expected a duration like "5s" or "250ms", got "60"',
      'a duration string needs a unit: write "60s" for seconds, or 60 without quotes for milliseconds',
    ],
    [5, 14, 'timeouts.body_idle', 'expected a duration like "5s" or "250ms" or a whole number of milliseconds, got -1'],
    [
      6,
      22,
      'timeouts.graceful_shutdown',
      'expected a duration of at most 2147483647ms (about 24.8 days, the longest a Node timer can wait), got "600h"',
    ],
    [
      7,
      17,
      'limits.body',
      'expected a size like "16kb" or "10mb", got "10 parsecs"',
      'units: b, kb, mb, gb, also k, m, g, kib, mib, gib; all powers of 1024',
    ],
    [7, 42, 'limits.header_size', 'expected a size like "16kb" or "10mb", got a list'],
    [7, 61, 'limits.request_line', 'expected a size like "16kb" or "10mb", got null'],
  ]);
});

test('positions follow YAML aliases to their anchors', () => {
  const text = `${L}upstreams:
  a: { servers: [http://a], timeouts: &t { connect: 5 parsecs } }
  b: { servers: [http://b], timeouts: *t }
routes: [{ upstream: a }, { upstream: b }]
`;
  const e = errors(text);
  assert.deepEqual(
    e.map(([line, column, path]) => [line, column, path]),
    [
      [3, 53, 'upstreams.a.timeouts.connect'],
      [3, 53, 'upstreams.b.timeouts.connect'],
    ],
  );
});

test('all errors come at once, in source order, with no raw validator wording', () => {
  const text = `listeners:
  - address: 99999
    extra: 1
upstreams:
  app: { servers: [], balance: x, pool: { max_connections: 0 } }
routes:
  - upstream: nope
    match: { host: 7 }
timeouts: { connect: 1s }
limits: { body: true, header_count: 1.5 }
proxy: { via: "a b", hide_headers: [Bad Header], drop_underscore_headers: 1 }
log: []
`;
  const e = errors(text);
  assert.ok(e.length >= 13, `only ${e.length} errors`);
  for (let i = 1; i < e.length; i++) {
    const [a, b] = [e[i - 1] as Brief, e[i] as Brief];
    assert.ok((a[0] as number) < (b[0] as number) || (a[0] === b[0] && (a[1] as number) <= (b[1] as number)), 'sorted');
  }
  for (const [, , path, message] of e) {
    assert.doesNotMatch(message, /\bmust\b|NOT|additional properties|anyOf/, `${path}: ${message}`);
    assert.match(message, /expected|unknown key|no upstream named|missing required/, `${path}: ${message}`);
  }
});

test('JSON: positions of errors, and JSON syntax is strict', async () => {
  const file = join(fixtures, 'invalid.json');
  const r = await loadConfigFile(file, {});
  assert.equal(r.ok, false);
  assert.deepEqual(brief(r.errors), [
    [6, 61, 'upstreams.app.balance', 'expected one of round_robin, least_request, least_conn, random, hash, sticky, got "fastest"'],
    [8, 13, 'routes[0]', 'a route takes exactly one of "upstream", "split", "respond" or "redirect", found "upstream" and "respond"', 'split it into several routes, or remove all but one'],
    [9, 11, 'log.levle', 'unknown key "levle"', 'did you mean "level"?'],
  ]);
  assert.equal(r.errors[0]?.file, file);

  const syntax = errors('{\n  "listeners": [{ "address": 8080 }],\n  log: {}\n}\n', 'usher.json');
  assert.deepEqual(syntax[0]?.slice(0, 3), [3, 3, '']);
  assert.match(syntax[0]?.[3] ?? '', /^invalid JSON: /);
});

test('formatIssues: file:line:column, severity, path, message and hint; file only without a position', () => {
  const issues: ConfigIssue[] = [
    { severity: 'error', file: 'a.yaml', line: 3, column: 7, path: 'log.level', message: 'bad', hint: 'did you mean "info"?' },
    { severity: 'warning', file: 'a.yaml', line: 1, column: 1, path: '', message: 'odd' },
    { severity: 'error', file: 'a.mjs', path: 'routes[0].upstream', message: 'no upstream named "x"' },
  ];
  assert.equal(
    formatIssues(issues),
    [
      'a.yaml:3:7: error: log.level: bad (did you mean "info"?)',
      'a.yaml:1:1: warning: odd',
      'a.mjs: error: routes[0].upstream: no upstream named "x"',
    ].join('\n'),
  );
  assert.equal(formatIssues([]), '');
});

test('upstream options: positions and messages for health checks, dns servers and balancer settings', () => {
  const text = `${L}upstreams:
  app:
    servers: [http://a]
    balance: round_robin
    hash: { key: header:x-user }
    health_check: { expect_status: ["399-200"], expect_body: "(" }
    dns: { servers: ["10.0.0.2", "nameserver:53"] }
    retry: { on: [404] }
routes: [{ upstream: app }]
`;
  assert.deepEqual(errors(text), [
    [7, 37, 'upstreams.app.health_check.expect_status[0]', 'expected a range from low to high like "200-399", got "399-200"', 'write "200-399"'],
    [
      7,
      62,
      'upstreams.app.health_check.expect_body',
      'expected a regular expression, got "(": Invalid regular expression: /(/: Unterminated group',
    ],
    [8, 34, 'upstreams.app.dns.servers[1]', 'expected a DNS server address like "10.0.0.2", "10.0.0.2:5353" or "[::1]:53", got "nameserver:53"'],
    [9, 19, 'upstreams.app.retry.on[0]', 'expected a whole number of at least 500, got 404'],
  ]);
  const ok = `${L}upstreams:\n  app:\n    servers: [http://a]\n    hash: { key: path }\nroutes: [{ upstream: app }]\n`;
  assert.deepEqual(warnings(ok), [[5, 5, 'upstreams.app.hash', '"hash" has no effect unless balance is "hash" (it is "round_robin")']]);
});

test('a 1 MiB unknown key is answered with the keys allowed there (did-you-mean is bounded by length)', () => {
  // Found by fuzzing: a full edit-distance table per candidate made this take 29 s.
  const key = 'x'.repeat(1024 * 1024);
  const [issue, ...more] = errors(`${L}upstreams: { app: { servers: [http://a] } }\nroutes: [{ upstream: app, ${key}: 1 }]\n`);
  assert.deepEqual(more, []);
  assert.deepEqual(issue?.slice(0, 4), [3, 27, `routes[0].${key}`, `unknown key "${key}"`]);
  assert.match(issue?.[4] ?? '', /^allowed here: name, match, /);
  // A near-miss a little longer than a word still gets its suggestion.
  assert.deepEqual(errors(`${L}log: { levels: info }\n`), [[2, 8, 'log.levels', 'unknown key "levels"', 'did you mean "level"?']]);
});
