// The cors and security_headers config sections: what the schema cannot say, reported at the spot.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../src/config/index.js';
import type { CompiledRoute } from '../../src/pipeline/types.js';
import type { HostPathRouter } from '../../src/router/index.js';
import { Runtime } from '../../src/server/runtime.js';
import { brief, type Brief } from '../helpers/issues.js';

function errors(text: string): Brief[] {
  const r = loadConfigText(text, 'usher.yaml', {});
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : brief(r.errors);
}

test('cors and security_headers config errors', () => {
  const got = errors(`listeners:
  - address: 8080
    security_headers: { content_security_policy: "a\\nb" }
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
  - upstream: app
    cors: { origins: "*", credentials: true }
  - upstream: app
    cors: { origins: [https://a.test/, app.test, "*", "https://*.x.test:8443", "ftp://a/b"], methods: ["*", GET] }
  - upstream: app
    cors: { origins: [https://a.test], credentials: true, expose_headers: ["*"] }
  - upstream: app
    security_headers: { frame_options: ALLOW-FROM }
`);
  assert.deepEqual(
    got.map((b) => b.slice(2)),
    [
      ['listeners[0].security_headers.content_security_policy', 'expected a header value without line breaks or control characters, got "a\\nb"'],
      ['routes[0].cors.credentials', 'credentials cannot be allowed for any origin: browsers refuse "Access-Control-Allow-Origin: *" with credentials', 'list the origins that may send credentials'],
      ['routes[1].cors.origins[0]', 'expected an origin like "https://app.example.com" or a pattern like "https://*.example.com", got "https://a.test/"', 'without the trailing "/": "https://a.test"'],
      ['routes[1].cors.origins[1]', 'expected an origin like "https://app.example.com" or a pattern like "https://*.example.com", got "app.test"', 'with the scheme: "https://app.test"'],
      ['routes[1].cors.origins[2]', 'write "*" alone, as `origins: "*"`, not inside a list'],
      ['routes[1].cors.origins[4]', 'expected an origin like "https://app.example.com" or a pattern like "https://*.example.com", got "ftp://a/b"', 'an origin is scheme://host[:port], with no path'],
      ['routes[1].cors.methods', '"*" stands for every value: write "methods": ["*"] alone'],
      ['routes[2].cors.expose_headers', 'with credentials, browsers read "*" in Access-Control-Expose-Headers as a header named "*"', 'list the header names'],
      ['routes[3].security_headers.frame_options', 'expected one of DENY, SAMEORIGIN, got "ALLOW-FROM"'],
    ],
  );
});

test('a route without access, cors or security_headers compiles no hook; one with them gets exactly their phases', () => {
  const r = loadConfigText(
    `listeners: [{ address: 0 }]
upstreams:
  app: { servers: [http://127.0.0.1:3001] }
routes:
  - { name: plain, upstream: app }
  - { name: all, match: { path: /x }, upstream: app, access: { allow: 10.0.0.0/8 }, cors: { origins: [https://a.test] }, security_headers: {} }
`,
    'usher.yaml',
    {},
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  const { runtime } = Runtime.build(r.config);
  const routes = (runtime.router as HostPathRouter<CompiledRoute>).candidates.map((c) => c.route);
  const plain = routes.find((x) => x.name === 'plain')!;
  assert.equal(plain.filters.length, 0);
  for (const [phase, list] of Object.entries(plain.phases)) assert.equal((list as unknown[]).length, 0, phase);
  const all = routes.find((x) => x.name === 'all')!;
  assert.deepEqual(all.phases.request.map((f) => f.name), ['access', 'cors']);
  assert.deepEqual(all.phases.response.map((f) => f.name), ['security_headers', 'cors']);
  assert.equal(all.phases.upstreamRequest.length + all.phases.done.length + all.phases.upstreamResponse.length, 0);
});
