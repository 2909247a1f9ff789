// Messages that say what is really expected (issue #11, point 6): each of these said something
// wrong or nothing before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadConfigObject, loadConfigText } from '../../src/config/index.js';
import { REASONS } from '../../src/errors/codes.js';
import { jsonSyntaxError } from '../../src/config/json-syntax.js';
import { brief, type Brief } from '../helpers/issues.js';

const L = 'listeners: [{ address: 8080 }]\n';

function errors(text: string, file = 'usher.yaml'): Brief[] {
  const r = loadConfigText(text, file, {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : brief(r.errors);
}

function warnings(text: string, file = 'usher.yaml'): Brief[] {
  const r = loadConfigText(text, file, {});
  assert.equal(r.ok, true, r.ok ? '' : JSON.stringify(r.errors));
  return brief(r.warnings);
}

test('sticky.secret shorter than 16 characters: says 16 characters, and does not echo the secret', () => {
  const e = errors(`${L}upstreams:\n  app:\n    servers: [http://127.0.0.1:1]\n    balance: sticky\n    sticky: { secret: short-secret }\nroutes: [{ upstream: app }]\n`);
  assert.deepEqual(e, [[6, 23, 'upstreams.app.sticky.secret', 'expected a string of at least 16 characters, got 12 characters']]);
  // An empty string where one character is the minimum is still "non-empty".
  const empty = errors(`${L}upstreams: { app: { servers: [http://127.0.0.1:1] } }\nroutes: [{ upstream: app, name: "" }]\n`);
  assert.deepEqual(empty, [[3, 33, 'routes[0].name', 'expected a non-empty string, got ""']]);
});

test('a route with no action lists every action: upstream, split, respond, redirect', () => {
  const e = errors(`${L}upstreams: { app: { servers: [http://127.0.0.1:1] } }\nroutes:\n  - match: { path: /x }\n`);
  assert.deepEqual(e, [
    [
      4,
      5,
      'routes[0]',
      'a route takes exactly one of "upstream", "split", "respond" or "redirect", found none',
      'add "upstream: <name>" to proxy the request, "split:" to divide it between upstreams, "respond:" to answer it directly, or "redirect:" to send the client elsewhere',
    ],
  ]);
});

test('a bare number under a second for a duration is a warning at its position, everywhere a duration goes', () => {
  const w = warnings(
    `${L}timeouts: { body_idle: 5, request_header: 2000, keep_alive: 0 }\nupstreams:\n  app:\n    servers: [http://127.0.0.1:1]\n    health_check: { path: /h, interval: 5, timeout: 500ms }\nroutes: [{ upstream: app }]\n`,
  );
  const hint = (n: number) => `a bare number is milliseconds: write "${n}s" for seconds, or "${n}ms" to keep ${n} milliseconds`;
  assert.deepEqual(w, [
    [2, 24, 'timeouts.body_idle', 'a duration of 5 milliseconds', hint(5)],
    [6, 41, 'upstreams.app.health_check.interval', 'a duration of 5 milliseconds', hint(5)],
  ]);
  // JS configs (no positions) get the same warning.
  const js = loadConfigObject({ listeners: [{ address: 8080 }], timeouts: { body_idle: 250 } }, 'usher.mjs');
  assert.equal(js.ok, true);
  assert.deepEqual(js.ok ? brief(js.warnings) : [], [[undefined, undefined, 'timeouts.body_idle', 'a duration of 250 milliseconds', hint(250)]]);
});

test('a .json file is parsed as JSON: a trailing comma or a comment is an error at file:line:col', () => {
  const trailing = errors('{\n  "listeners": [{ "address": 8080 }],\n}\n', 'usher.json');
  assert.equal(trailing.length, 1);
  assert.deepEqual(trailing[0], [2, 37, '', 'invalid JSON: a trailing comma before "}" is not allowed in JSON']);
  const comment = errors('{\n  "listeners": [{ "address": 8080 }] // here\n}\n', 'usher.json');
  assert.deepEqual(comment[0], [2, 38, '', 'invalid JSON: comments are not allowed in JSON']);
  assert.deepEqual(errors("{ 'listeners': [] }", 'usher.json'), [[1, 3, '', 'invalid JSON: expected a key in double quotes, found "\'"']]);
  const truncated = errors('{\n  "listeners": [\n', 'usher.json');
  assert.deepEqual(truncated, [[3, 1, '', 'invalid JSON: expected a value, found the end of the file']]);
  // Valid JSON still gets positions for what the schema says.
  assert.deepEqual(errors('{\n  "listeners": [{ "address": 8080, "tsl": {} }]\n}\n', 'usher.json'), [
    [2, 36, 'listeners[0].tsl', 'unknown key "tsl"', 'did you mean "tls"?'],
  ]);
});

test('a duplicate route says each index once', () => {
  const w = warnings(`${L}upstreams: { app: { servers: [http://127.0.0.1:1] } }\nroutes:\n  - { match: { path: /a }, upstream: app }\n  - { match: { path: /a }, upstream: app }\n  - { name: b, match: { path: /b }, upstream: app }\n  - { name: b2, match: { path: /b }, upstream: app }\n`);
  assert.deepEqual(
    w.map((x) => `${x[2]}: ${x[3]}`),
    ['routes[1]: this route duplicates routes[0]: same priority and match, so it never matches', 'routes[3]: route "b2" duplicates "b" (routes[2]): same priority and match, so it never matches'],
  );
});

test('README: the reason-code list names every code in the registry', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const list = /Reason codes: ([\s\S]*?) — the registry/.exec(readme)?.[1] ?? '';
  const named = new Set([...list.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1]));
  assert.deepEqual(Object.keys(REASONS).filter((c) => !named.has(c)), []);
});

test('the JSON syntax check agrees with JSON.parse on what is JSON, over mutations of a real config', () => {
  const base = readFileSync(new URL('../../../test/fixtures/config/example.json', import.meta.url), 'utf8');
  const pieces = [',', '}', ']', '{', '[', '"', ':', ' ', '\\', 'tru', '1e', '-', '0', '\n', '//', "'", '\u0001', 'null'];
  let seed = 11;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let k = 0; k < 3000; k++) {
    let text = base;
    for (let m = rand(3) + 1; m > 0; m--) {
      const at = rand(text.length + 1);
      text = rand(2) === 0 ? text.slice(0, at) + pieces[rand(pieces.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + rand(3));
    }
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    const found = jsonSyntaxError(text);
    assert.equal(found === undefined, parses, `${JSON.stringify(text)}: ${found?.message ?? 'accepted'}`);
    if (found !== undefined) assert.ok(found.offset >= 0 && found.offset <= text.length);
  }
});
