import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CIPHERS } from '../../src/tls/config/schema.js';
import {
  defineConfig,
  loadConfigFile,
  loadConfigObject,
  loadConfigText,
  type LoadResult,
  type UsherConfig,
} from '../../src/config/index.js';

// Tests run compiled from dist/test/unit/; fixtures stay in the source tree.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = join(root, 'test/fixtures/config');

function ok(r: LoadResult): UsherConfig {
  if (!r.ok) assert.fail(`expected the config to load, got:\n${r.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`).join('\n')}`);
  return r.config;
}

const EXAMPLE = readFileSync(join(fixtures, 'example.yaml'), 'utf8');

const DEFAULT_TOP_LEVEL = {
  timeouts: { request_header: 10_000, body_idle: 30_000, keep_alive: 5000, graceful_shutdown: 10_000 },
  limits: { request_line: 8192, header_size: 16_384, header_count: 100, body: null },
  proxy: {
    trusted_proxies: [],
    hide_headers: ['server', 'x-powered-by'],
    via: 'usher',
    drop_underscore_headers: true,
    request_id_header: 'x-request-id',
  },
  log: { level: 'info', access_log: false, access: { format: 'json', file: null, buffer: 4 * 1024 * 1024, sample: 1 } },
  routing: { encoded_slashes: 'reject' },
  upgrade: { protocols: ['websocket'], idle_timeout: 600_000 },
  workers: 'auto',
  workers_mechanism: 'auto',
} as const;

// Defaults of the upstreams issue's options (balancing, failover, health, retries...).
const SERVER_DEFAULTS = { backup: false, priority: 0, max_requests: null };
const UPSTREAM_DEFAULTS = {
  hash: { key: 'client_ip' },
  sticky: { cookie: 'usher_sticky', secret: null, max_age: null },
  panic_threshold: 50,
  slow_start: 0,
  health_check: null,
  // On by default (issue #11: a dead server stayed in rotation forever).
  outlier_detection: { consecutive_5xx: 3, consecutive_connect_failures: 1, base_ejection_time: 10_000, max_ejection_time: 300_000, max_ejection_percent: 50, readmit_on_check: true },
  retry: { attempts: 2, on: [502, 503, 504, 'reset'], per_try_timeout: 15_000, backoff: { base: 25, max: 250 }, budget: { percent: 20, min_retries: 3 }, buffer_body: 65536 },
  circuit_breaker: null,
  dns: null,
};

// Every route's drain policy (routes[].drain) when it sets none: 30 s of grace, cut 10 s later.
const DRAIN = { grace: 30_000, close_after: 10_000 };

const server = (port: number) => ({
  url: `http://127.0.0.1:${port}`,
  origin: `http://127.0.0.1:${port}`,
  authority: `127.0.0.1:${port}`,
  weight: 1,
  ...SERVER_DEFAULTS,
});

test('the README example loads and normalizes', () => {
  const r = loadConfigText(EXAMPLE, 'usher.yaml', {});
  const config = ok(r);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(config, {
    listeners: [{ address: '127.0.0.1:8080', host: '127.0.0.1', port: 8080 }],
    upstreams: {
      __proto__: null,
      app: {
        name: 'app',
        servers: [server(3001), server(3002)],
        balance: 'round_robin',
        protocol: 'http1',
        engine: 'native',
        host_header: 'preserve',
        pool: { max_connections: 128, keep_alive_timeout: 60_000 },
        timeouts: { connect: 5000, response_header: 60_000, body_idle: 60_000 },
        ...UPSTREAM_DEFAULTS,
        source: { file: 'usher.yaml', line: 4, column: 3 },
      },
    },
    routes: [
      {
        name: 'routes[0]',
        index: 0,
        drain: DRAIN,
        match: { hosts: ['example.test'], path: '/api' },
        upstream: 'app',
        source: { file: 'usher.yaml', line: 9, column: 5 },
      },
      {
        name: 'routes[1]',
        index: 1,
        drain: DRAIN,
        match: { hosts: [], path: '/admin' },
        respond: { status: 403, body: 'forbidden\n', headers: { __proto__: null } },
        source: { file: 'usher.yaml', line: 11, column: 5 },
      },
      {
        name: 'routes[2]',
        index: 2,
        drain: DRAIN,
        match: { hosts: [] },
        upstream: 'app',
        source: { file: 'usher.yaml', line: 13, column: 5 },
      },
    ],
    ...DEFAULT_TOP_LEVEL,
    file: 'usher.yaml',
  });
});

test('the same example from a file carries the file name', async () => {
  const file = join(fixtures, 'example.yaml');
  const config = ok(await loadConfigFile(file, {}));
  assert.equal(config.file, file);
  assert.deepEqual(config.routes[1]?.source, { file, line: 11, column: 5 });
});

test('defaults are applied to everything left out', () => {
  const config = ok(loadConfigText('listeners: [{ address: 8080 }]\n', 'min.yaml', {}));
  assert.deepEqual(config, {
    listeners: [{ address: '8080', host: '0.0.0.0', port: 8080 }],
    upstreams: { __proto__: null },
    routes: [],
    ...DEFAULT_TOP_LEVEL,
    file: 'min.yaml',
  });
  const withUpstream = ok(
    loadConfigText('listeners: [{ address: 8080 }]\nupstreams: { a: { servers: [http://x] } }\nroutes: [{ upstream: a }]\n', 'u.yaml', {}),
  );
  assert.deepEqual(withUpstream.upstreams.a?.pool, { max_connections: 128, keep_alive_timeout: 60_000 });
  const respond = ok(loadConfigText('listeners: [{ address: 8080 }]\nroutes: [{ respond: {} }]\n', 'r.yaml', {}));
  assert.deepEqual(respond.routes[0]?.respond, { status: 200, body: '', headers: { __proto__: null } });
});

test('the result is deeply frozen', () => {
  const config = ok(loadConfigText(EXAMPLE, 'usher.yaml', {}));
  const frozen = [
    config,
    config.listeners,
    config.listeners[0],
    config.upstreams,
    config.upstreams.app,
    config.upstreams.app?.servers[0],
    config.upstreams.app?.timeouts,
    config.routes[0]?.match.hosts,
    config.routes[1]?.respond?.headers,
    config.proxy.hide_headers,
    config.log,
  ];
  for (const o of frozen) assert.ok(Object.isFrozen(o));
  // ES modules are strict code: writing to a frozen object throws.
  assert.throws(() => {
    (config.timeouts as { keep_alive: number }).keep_alive = 1;
  }, TypeError);
  assert.throws(() => {
    (config.proxy.hide_headers as string[]).push('x');
  }, TypeError);
});

test('every section of the reference config loads, without warnings', async () => {
  const file = join(fixtures, 'reference.yaml');
  const r = await loadConfigFile(file, {});
  const config = ok(r);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(config.listeners[1], {
    address: '[::1]:8443',
    host: '::1',
    port: 8443,
    // Relative to the config file's directory.
    tls: {
      default: { cert: join(fixtures, 'certs/example.pem'), key: join(fixtures, 'certs/example-key.pem'), names: [] },
      certificates: [],
      min_version: 'TLSv1.2',
      ciphers: DEFAULT_CIPHERS,
      session_tickets: true,
      ticket_key_rotation: 12 * 3_600_000,
      hsts: null,
      client_auth: null,
    },
  });
  assert.deepEqual(
    config.upstreams.app?.servers.map((s) => [s.url, s.weight]),
    [
      ['http://127.0.0.1:3001', 2],
      ['http://127.0.0.1:3002', 1],
    ],
  );
  assert.deepEqual(config.routes[0]?.match, { hosts: ['example.test', '*.example.test'], path: '/api' });
  assert.equal(config.routes[0]?.name, 'api');
  assert.deepEqual(config.routes[1]?.respond, { status: 403, body: 'forbidden\n', headers: { __proto__: null, 'content-type': 'text/plain' } });
  assert.equal(config.routes[2]?.name, 'routes[2]');
  assert.equal(config.limits.body, 10 * 1024 * 1024);
  assert.deepEqual(config.proxy.trusted_proxies, ['10.0.0.0/8', '::1/128']);
});

test('listener address forms', () => {
  const cases: [string, { host: string; port: number }][] = [
    ['8080', { host: '0.0.0.0', port: 8080 }],
    ['"8080"', { host: '0.0.0.0', port: 8080 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['0', { host: '0.0.0.0', port: 0 }],
    ['127.0.0.1:80', { host: '127.0.0.1', port: 80 }],
    ['"[::1]:8080"', { host: '::1', port: 8080 }],
    ['"[::]:8080"', { host: '::', port: 8080 }],
    ['LocalHost:3000', { host: 'localhost', port: 3000 }],
  ];
  for (const [address, want] of cases) {
    const config = ok(loadConfigText(`listeners: [{ address: ${address} }]\n`, 'l.yaml', {}));
    const l = config.listeners[0];
    assert.deepEqual({ host: l?.host, port: l?.port }, want, address);
  }
});

test('servers: bare strings, weights, origins and authorities', () => {
  const text = `listeners: [{ address: 0 }]
upstreams:
  a:
    servers:
      - https://Example.COM:443
      - { url: "http://[::1]:3000", weight: 5 }
      - http://10.0.0.1
routes: [{ upstream: a }]
`;
  const servers = ok(loadConfigText(text, 's.yaml', {})).upstreams.a?.servers;
  assert.deepEqual(servers, [
    { url: 'https://Example.COM:443', origin: 'https://example.com', authority: 'example.com', weight: 1, ...SERVER_DEFAULTS },
    { url: 'http://[::1]:3000', origin: 'http://[::1]:3000', authority: '[::1]:3000', weight: 5, ...SERVER_DEFAULTS },
    { url: 'http://10.0.0.1', origin: 'http://10.0.0.1', authority: '10.0.0.1', weight: 1, ...SERVER_DEFAULTS },
  ]);
});

test('route hosts are lower-cased and de-duplicated; trusted proxies become CIDRs', () => {
  const text = `listeners: [{ address: 0 }]
routes:
  - match: { host: [Example.TEST, example.test, "*.Example.test:8443"] }
    respond: {}
  - match: { host: API.example.test }
    respond: {}
proxy: { trusted_proxies: [10.1.2.3, "FE80::1", 192.168.0.0/16], hide_headers: [Server, X-Foo, server], request_id_header: X-Trace-Id }
`;
  const config = ok(loadConfigText(text, 'h.yaml', {}));
  assert.deepEqual(config.routes[0]?.match.hosts, ['example.test', '*.example.test:8443']);
  assert.deepEqual(config.routes[1]?.match.hosts, ['api.example.test']);
  assert.deepEqual(config.proxy.trusted_proxies, ['10.1.2.3/32', 'fe80::1/128', '192.168.0.0/16']);
  assert.deepEqual(config.proxy.hide_headers, ['server', 'x-foo']);
  assert.equal(config.proxy.request_id_header, 'x-trace-id');
});

test('durations and sizes in a config become ms and bytes; via and body may be null', () => {
  const text = `listeners: [{ address: 0 }]
timeouts: { request_header: 1m30s, body_idle: 250, keep_alive: 1.5s, graceful_shutdown: 1h }
limits: { request_line: 512, header_size: "1k", header_count: 7, body: 2gb }
proxy: { via: null }
`;
  const config = ok(loadConfigText(text, 'd.yaml', {}));
  assert.deepEqual(config.timeouts, { request_header: 90_000, body_idle: 250, keep_alive: 1500, graceful_shutdown: 3_600_000 });
  assert.deepEqual(config.limits, { request_line: 512, header_size: 1024, header_count: 7, body: 2 * 1024 ** 3 });
  assert.equal(config.proxy.via, null);
});

test('a JSON config loads, with $schema allowed', async () => {
  const config = ok(await loadConfigFile(join(fixtures, 'example.json'), {}));
  assert.deepEqual(
    config.upstreams.app?.servers.map((s) => s.weight),
    [1, 3],
  );
  assert.equal(config.limits.body, 1024 * 1024);
  // JSON by content when the name says nothing.
  assert.ok(loadConfigText('{"listeners": [{"address": 8080}]}', 'config', {}).ok);
});

test('a .mjs config using defineConfig loads; its issues have no positions', async () => {
  const file = join(fixtures, 'defined.mjs');
  const config = ok(await loadConfigFile(file));
  assert.equal(config.file, file);
  assert.equal(config.upstreams.web?.timeouts.connect, 250);
  assert.equal(config.limits.body, 1024);
  assert.equal(config.routes[0]?.name, 'all');
  assert.deepEqual(config.routes[0]?.source, { file, line: 0, column: 0 });

  const bad = await loadConfigFile(join(fixtures, 'invalid.mjs'));
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.errors, [
    {
      severity: 'error',
      file: join(fixtures, 'invalid.mjs'),
      path: 'routes[0].upstream',
      message: 'no upstream named "nowhere"',
      hint: 'no upstreams are defined; add one under "upstreams:"',
    },
  ]);
});

test('defineConfig is the identity and type-checks its argument', () => {
  const input = defineConfig({
    listeners: [{ address: ':8080' }],
    upstreams: { app: { servers: ['http://127.0.0.1:3001', { url: 'http://127.0.0.1:3002', weight: 2 }] } },
    routes: [{ upstream: 'app', match: { host: ['a.test'] } }],
    timeouts: { keep_alive: '5s' },
    limits: { body: null },
  });
  const config = ok(loadConfigObject(input, '<embedded>'));
  assert.equal(config.file, '<embedded>');
  assert.equal(config.upstreams.app?.servers[1]?.weight, 2);
  // A different object each time: normalizing never freezes or aliases the input.
  assert.equal(Object.isFrozen(input), false);
});

test('modules without a default export, missing files and TypeScript files are issues, not throws', async () => {
  const cases: [string, RegExp][] = [
    [join(fixtures, 'no-default.mjs'), /^expected the module to export the config as its default export$/],
    [join(fixtures, 'does-not-exist.yaml'), /^cannot read the config file: no such file$/],
    [join(fixtures, 'does-not-exist.mjs'), /^cannot read the config file: no such file$/],
    [fixtures, /^cannot read the config file: it is a directory$/],
    [join(fixtures, 'usher.ts'), /^TypeScript config files cannot be loaded directly$/],
  ];
  for (const [file, message] of cases) {
    const r = await loadConfigFile(file, {});
    assert.equal(r.ok, false, file);
    assert.equal(r.errors.length, 1, file);
    assert.equal(r.errors[0]?.file, file);
    assert.match(r.errors[0]?.message ?? '', message);
  }
});

test('outlier detection and the per-try timeout are on by default; each can be turned off', () => {
  const text = (extra: string) => `listeners: [{ address: 8080 }]\nupstreams: { a: { servers: [http://x]${extra} } }\nroutes: [{ upstream: a }]\n`;
  const on = ok(loadConfigText(text(''), 'u.yaml', {})).upstreams.a!;
  assert.equal(on.outlier_detection?.consecutive_connect_failures, 1);
  assert.equal(on.retry.per_try_timeout, 15_000);
  const off = ok(loadConfigText(text(', outlier_detection: { enabled: false }, retry: { per_try_timeout: null }'), 'u.yaml', {})).upstreams.a!;
  assert.equal(off.outlier_detection, null);
  assert.equal(off.retry.per_try_timeout, null);
});
