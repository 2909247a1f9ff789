import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, type ConfigIssue, type LoadResult, type UsherConfig } from '../../src/config/index.js';

function ok(r: LoadResult): UsherConfig {
  if (!r.ok) assert.fail(r.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`).join('\n'));
  return r.config;
}

function errorsOf(r: LoadResult): [number | undefined, number | undefined, string, string, string | undefined][] {
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.errors.map((e: ConfigIssue) => [e.line, e.column, e.path, e.message, e.hint]);
}

const UPSTREAM = `upstreams:
  app:
    servers:
      - url: http://\${UP_HOST:-127.0.0.1}:3001
        weight: \${WEIGHT:-1}
routes: [{ upstream: app }]
`;

test('set variables are substituted; whole unquoted values are re-typed as YAML would', () => {
  // Block style: in a flow mapping ({ ... }) YAML reads "{" in ${...} as syntax, so it must be quoted there.
  const text = `listeners:\n  - address: \${HOST}:\${PORT}\n  - address: \${PORT2}\n${UPSTREAM}log:\n  access_log: \${ACCESS_LOG}\n`;
  const config = ok(loadConfigText(text, 'usher.yaml', { HOST: '10.1.1.1', PORT: '8080', PORT2: '9090', UP_HOST: 'app.internal', WEIGHT: '3', ACCESS_LOG: 'true' }));
  assert.deepEqual(config.listeners.map((l) => [l.address, l.host, l.port]), [
    ['10.1.1.1:8080', '10.1.1.1', 8080],
    ['9090', '0.0.0.0', 9090],
  ]);
  assert.equal(config.upstreams.app?.servers[0]?.origin, 'http://app.internal:3001');
  assert.equal(config.upstreams.app?.servers[0]?.weight, 3);
  assert.equal(config.log.access_log, true);
});

test('defaults apply when the variable is unset or empty, as in sh', () => {
  const text = `listeners: [{ address: "\${PORT:-8080}" }]\n${UPSTREAM}`;
  for (const env of [{}, { UP_HOST: '', WEIGHT: '', PORT: '' }]) {
    const config = ok(loadConfigText(text, 'usher.yaml', env));
    assert.equal(config.listeners[0]?.port, 8080);
    assert.equal(config.upstreams.app?.servers[0]?.url, 'http://127.0.0.1:3001');
    assert.equal(config.upstreams.app?.servers[0]?.weight, 1);
  }
  assert.equal(ok(loadConfigText(text, 'usher.yaml', { PORT: '81' })).listeners[0]?.port, 81);
});

test('an unset variable without a default is an error at the "${", reported once', () => {
  const text = `listeners:
  - address: \${PORT}
routes:
  - respond: { body: "hi \${NAME} and \${OTHER}" }
`;
  assert.deepEqual(errorsOf(loadConfigText(text, 'usher.yaml', { OTHER: 'x' })), [
    [2, 14, 'listeners[0].address', 'environment variable PORT is not set', 'set it, or give a default: ${PORT:-value}'],
    [4, 26, 'routes[0].respond.body', 'environment variable NAME is not set', 'set it, or give a default: ${NAME:-value}'],
  ]);
});

test('quoted values stay strings after substitution', () => {
  const text = `listeners: [{ address: 0 }]\n${UPSTREAM.replace('weight: ${WEIGHT:-1}', 'weight: "${WEIGHT}"')}`;
  assert.deepEqual(errorsOf(loadConfigText(text, 'usher.yaml', { WEIGHT: '2' })), [
    [6, 17, 'upstreams.app.servers[0].weight', 'expected a whole number, got "2"', undefined],
  ]);
});

test('$${ is a literal ${; malformed references are errors', () => {
  const good = 'listeners: [{ address: 0 }]\nroutes: [{ respond: { body: "cost $${X}" } }]\n';
  assert.equal(ok(loadConfigText(good, 'usher.yaml', { X: 'no' })).routes[0]?.respond?.body, 'cost ${X}');

  const bad = 'listeners: [{ address: 0 }]\nroutes:\n  - respond: { body: "${1X}" }\n  - respond: { body: "a ${X" }\n';
  assert.deepEqual(errorsOf(loadConfigText(bad, 'usher.yaml', {})), [
    [3, 23, 'routes[0].respond.body', 'expected an environment variable name (letters, digits, "_"), got "${1X}"', 'write ${NAME} or ${NAME:-default}'],
    [4, 25, 'routes[1].respond.body', 'unterminated "${" in "a ${X"', 'write ${NAME} or ${NAME:-default}, or $${ for a literal "${"'],
  ]);
});

test('block scalars are substituted too', () => {
  const text = 'listeners: [{ address: 0 }]\nroutes:\n  - respond:\n      body: |\n        hello ${WHO}\n';
  assert.equal(ok(loadConfigText(text, 'usher.yaml', { WHO: 'world' })).routes[0]?.respond?.body, 'hello world\n');
});

test('JSON strings are substituted and stay strings', () => {
  const text = '{ "listeners": [{ "address": "${PORT}" }], "routes": [{ "respond": { "status": "${STATUS}" } }] }';
  assert.deepEqual(errorsOf(loadConfigText(text, 'usher.json', { PORT: '8080', STATUS: '204' })), [
    [1, 80, 'routes[0].respond.status', 'expected a whole number, got "204"', undefined],
  ]);
  const config = ok(loadConfigText('{ "listeners": [{ "address": "${PORT}" }] }', 'usher.json', { PORT: '8080' }));
  assert.equal(config.listeners[0]?.port, 8080);
});

test('the environment defaults to process.env', () => {
  process.env.USHER_CONFIG_TEST_PORT = '7070';
  after(() => {
    delete process.env.USHER_CONFIG_TEST_PORT;
  });
  const config = ok(loadConfigText('listeners: [{ address: "${USHER_CONFIG_TEST_PORT}" }]\n', 'usher.yaml'));
  assert.equal(config.listeners[0]?.port, 7070);
});

test('a variable named like an Object.prototype member is unset unless the environment has it', () => {
  for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    const text = `listeners: [{ address: 8080 }]\nroutes: [{ respond: { body: "\${${name}:-unset}" } }]\n`;
    assert.equal(ok(loadConfigText(text, 'usher.yaml', process.env)).routes[0]?.respond?.body, 'unset', name);
    assert.equal(ok(loadConfigText(text, 'usher.yaml', {})).routes[0]?.respond?.body, 'unset', name);
    const env = JSON.parse(`{ ${JSON.stringify(name)}: "set" }`) as NodeJS.ProcessEnv;
    assert.equal(ok(loadConfigText(text, 'usher.yaml', env)).routes[0]?.respond?.body, 'set', name);
  }
});
