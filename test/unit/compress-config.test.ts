import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../src/config/index.js';
import { chooseEncoding, parseAcceptEncoding, ZSTD_AVAILABLE } from '../../src/filters/compress/index.js';
import type { CompiledRoute } from '../../src/pipeline/types.js';
import type { HostPathRouter } from '../../src/router/index.js';
import { Runtime } from '../../src/server/runtime.js';
import { brief } from '../helpers/issues.js';

const choose = (ae: string, algs: ('zstd' | 'br' | 'gzip')[] = ['br', 'gzip']) => chooseEncoding(parseAcceptEncoding(ae), algs);

test('Accept-Encoding: q-values, the server order on ties, q=0 refusals (RFC 9110 §12.5.3)', () => {
  assert.equal(choose('gzip, deflate, br').alg, 'br'); // ties: the server's order
  assert.equal(choose('gzip, br', ['gzip', 'br']).alg, 'gzip');
  assert.equal(choose('gzip;q=1.0, br;q=0.5').alg, 'gzip');
  assert.equal(choose('br;q=0, gzip').alg, 'gzip');
  assert.equal(choose('BR;Q=0.9, GZIP;q=0.8').alg, 'br'); // case-insensitive
  assert.equal(choose('x-gzip').alg, 'gzip');
  assert.equal(choose('deflate').alg, null);
  assert.equal(choose('').alg, null); // empty: no coding wanted
  assert.equal(choose('*').alg, 'br');
  assert.equal(choose('*;q=0.5, br;q=0').alg, 'gzip');
  assert.equal(choose('gzip;q=0.5, identity').alg, null); // identity weighed higher
  assert.equal(choose('gzip;q=abc, br;q=0.2').alg, 'br'); // a malformed weight drops its element
  assert.equal(choose('gzip;q=1.5').alg, null);
  assert.deepEqual(choose('gzip, identity;q=0'), { alg: 'gzip', identityRefused: true });
  assert.deepEqual(choose('*;q=0'), { alg: null, identityRefused: true });
  assert.deepEqual(choose('*;q=0, identity'), { alg: null, identityRefused: false });
  assert.deepEqual(choose('gzip;q=0, *;q=0'), { alg: null, identityRefused: true });
  // zstd only where this Node has it: never chosen otherwise, and never an error.
  assert.equal(choose('zstd, gzip;q=0.5', ['zstd', 'gzip']).alg, ZSTD_AVAILABLE ? 'zstd' : 'gzip');
});

const BASE = `listeners: [{ address: 0 }]
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
`;

function routes(text: string): CompiledRoute[] {
  const r = loadConfigText(BASE + text, 'usher.yaml', {});
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  const { runtime } = Runtime.build(r.config);
  return (runtime.router as HostPathRouter<CompiledRoute>).candidates.map((c) => c.route);
}

test('a route without compress compiles no hook; with it, response and response_body only', () => {
  const rs = routes(`routes:
  - { name: plain, upstream: app }
  - { name: zipped, match: { path: /z }, upstream: app, compress: {} }
`);
  const plain = rs.find((x) => x.name === 'plain')!;
  assert.equal(plain.filters.length, 0);
  for (const [phase, list] of Object.entries(plain.phases)) assert.equal((list as unknown[]).length, 0, phase);
  const z = rs.find((x) => x.name === 'zipped')!;
  assert.deepEqual(z.phases.response.map((f) => f.name), ['compress']);
  assert.deepEqual(z.phases.responseBody.map((f) => f.name), ['compress']);
  assert.equal(z.phases.request.length + z.phases.upstreamRequest.length + z.phases.done.length, 0);
});

test('the top-level compress is every proxied route\'s default; a route\'s fields override it, false turns it off', () => {
  const r = loadConfigText(
    `${BASE}compress: { gzip_level: 3, types: [TEXT/HTML] }
routes:
  - { name: inherit, upstream: app }
  - { name: own, match: { path: /own }, upstream: app, compress: { gzip_level: 9, min_size: 1kb } }
  - { name: off, match: { path: /off }, upstream: app, compress: false }
  - { name: local, match: { path: /local }, respond: { body: hi } }
`,
    'usher.yaml',
    {},
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  const by = Object.fromEntries(r.config.routes.map((x) => [x.name, x.compress]));
  assert.deepEqual(by.inherit, { algorithms: ['zstd', 'br', 'gzip'], gzip_level: 3, br_level: 4, zstd_level: 3, min_size: 256, types: ['text/html'], event_stream: 'flush' });
  assert.equal(by.own!.gzip_level, 9);
  assert.equal(by.own!.min_size, 1024);
  assert.deepEqual(by.own!.types, ['text/html']);
  assert.equal(by.off, undefined);
  assert.equal(by.local, undefined);
});

test('compress config errors', () => {
  const r = loadConfigText(
    `${BASE}compress: { types: ["te*t/html"] }
routes:
  - { match: { path: /a }, respond: { body: x }, compress: {} }
  - { upstream: app, compress: { gzip_level: 12, algorithms: [gzip, lz4] } }
  - { upstream: app, compress: true }
`,
    'usher.yaml',
    {},
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  const got = brief(r.errors).map((b) => `${b[2]}: ${b[3]}`);
  assert.ok(got.some((g) => g.startsWith('routes[1].compress.gzip_level')), got.join('\n'));
  assert.ok(got.some((g) => g.startsWith('routes[1].compress.algorithms[1]')), got.join('\n'));
  assert.ok(got.some((g) => g.startsWith('routes[2].compress')), got.join('\n'));
});

test('compress config checks: wildcards in types, compress on a route that answers itself', () => {
  const r = loadConfigText(
    `${BASE}compress: { types: ["te*t/html"] }
routes:
  - { match: { path: /a }, respond: { body: x }, compress: {} }
`,
    'usher.yaml',
    {},
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(
    brief(r.errors).map((b) => `${b[2]}: ${b[3]}`),
    ['compress.types[0]: expected a media type like "text/html" or "text/*", got "te*t/html"', 'routes[0].compress: "compress" applies to requests proxied to an upstream; this route answers them itself'],
  );
});

test('the README compression example is valid and means what the text says', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Compression'), readme.indexOf('## Performance'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  const r = loadConfigText(`${BASE}  api: { servers: [http://127.0.0.1:3002] }\n  files: { servers: [http://127.0.0.1:3003] }\n${yaml}`, 'README.md', {});
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  if (!r.ok) return;
  const [api, files] = r.config.routes;
  assert.deepEqual(api!.compress!.algorithms, ['br', 'gzip']);
  assert.equal(api!.compress!.min_size, 1024);
  assert.equal(api!.compress!.gzip_level, 5);
  assert.equal(files!.compress, undefined);
});
