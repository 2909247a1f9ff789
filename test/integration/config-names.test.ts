import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassThrough } from 'node:stream';
import { loadConfigText } from '../../src/config/index.js';
import { Usher } from '../../src/server/usher.js';
import { join } from 'node:path';
import { runCli, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';

// Found by fuzzing (issue #11): an upstream named "__proto__" validated as "0 upstreams" and every
// request routed to it got 500, because the name was stored on a plain object and reached its
// prototype. Every name a config chooses must be just a name.
const NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

/** Every value of `name` in a raw header list, in order. */
function values(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]!);
  return out;
}

for (const name of NAMES) {
  test(`"${name}" works as the name of an upstream, a route, headers, query and cookie conditions, over real requests`, async (t) => {
    const up = await startUpstream(name, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, [name, 'from-upstream', 'content-type', 'application/json']);
        res.end(JSON.stringify(req.rawHeaders));
      });
    });
    t.after(() => up.close());
    const text = `listeners: [{ address: "127.0.0.1:0" }]
log: { level: warn, access_log: true }
proxy: { drop_underscore_headers: false }
upstreams:
  ${name}: { servers: [${up.url}] }
routes:
  - name: ${name}
    match:
      path: /p
      headers: { ${name}: { exact: h } }
      query: { ${name}: { exact: q } }
      cookies: { ${name}: { exact: c } }
    upstream: ${name}
    request_headers: { set: { ${name}: set-by-rule }, add: { x-also: "1" } }
    response_headers: { add: { ${name}: added-by-rule } }
  - match: { path: /r }
    respond: { status: 202, body: ok, headers: { ${name}: responded } }
`;
    // What the fuzzing saw first: `usher validate` said "valid (1 routes, 0 upstreams)".
    const validated = await runCli(['validate', '--config', writeFile(join(tempDir(t), 'names.yaml'), text)]);
    assert.equal(validated.code, 0, validated.stderr);
    assert.match(validated.stdout, /valid \(2 routes, 1 upstream\)/);
    const loaded = loadConfigText(text, 'names.yaml', {});
    assert.equal(loaded.ok, true, loaded.ok ? '' : JSON.stringify(loaded.errors));
    if (!loaded.ok) return;
    assert.deepEqual(Object.keys(loaded.config.upstreams), [name], 'the upstream is counted');
    assert.deepEqual(loaded.warnings, []);
    const access: Record<string, unknown>[] = [];
    const accessStream = new PassThrough();
    accessStream.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n')) if (line.trim()) access.push(JSON.parse(line) as Record<string, unknown>);
    });
    const usher = new Usher(loaded.config, { accessLogDestination: accessStream, logDestination: new PassThrough() });
    await usher.start();
    t.after(() => usher.close(1000));
    const url = `http://127.0.0.1:${usher.addresses()[0]!.port}`;

    const r = await request(`${url}/p?${name}=q`, { headers: { [name]: 'h', cookie: `${name}=c` } });
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as string[];
    assert.deepEqual(values(seen, name), ['set-by-rule'], 'the request rule set the header');
    assert.deepEqual(values(r.rawHeaders, name), ['from-upstream', 'added-by-rule']);
    assert.equal(access.at(-1)?.route, name);
    assert.equal(access.at(-1)?.upstream, up.url);

    // The route's conditions are real: without the header it does not match.
    const miss = await request(`${url}/p?${name}=q`, { headers: { cookie: `${name}=c` } });
    assert.equal(miss.status, 404);

    const local = await request(`${url}/r`);
    assert.equal(local.status, 202);
    assert.deepEqual(values(local.rawHeaders, name), ['responded']);
  });
}


// The sections added since (issues #12, #13): cache stores, rate-limit policies, the JWT claim
// copied to a header, the rate-limit key on that claim.
for (const name of NAMES) {
  test(`"${name}" works as the name of a cache store, a rate-limit policy and a JWT claim`, { timeout: 120_000 }, async (t) => {
    let hits = 0;
    const up = await startUpstream(name, (req, res) => {
      hits++;
      req.resume();
      res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-type': 'text/plain' }); // public: asked with Authorization (RFC 9111 §3.5)
      res.end(`user ${String(req.headers['x-user'])}`);
    });
    t.after(() => up.close());
    const secret = 'a-test-secret-of-32-bytes-length';
    const text = `listeners: [{ address: "127.0.0.1:0" }]
log: { level: warn, access_log: false }
upstreams:
  app: { servers: [${up.url}] }
caches:
  ${name}: { store: memory, max_size: 1mb }
rate_limits:
  policies:
    ${name}: { rate: 1000, per: 1s, key: [{ jwt_claim: ${name} }] }
routes:
  - upstream: app
    auth: { jwt: { secret: "${secret}", claims_to_headers: { ${name}: x-user } } }
    rate_limits: [${name}]
    cache: ${name}
`;
    const loaded = loadConfigText(text, 'names.yaml', {});
    assert.equal(loaded.ok, true, loaded.ok ? '' : JSON.stringify(loaded.errors));
    if (!loaded.ok) return;
    const usher = new Usher(loaded.config, { accessLogDestination: new PassThrough().resume(), logDestination: new PassThrough().resume() });
    await usher.start();
    t.after(() => usher.close(1000));
    const url = `http://127.0.0.1:${usher.addresses()[0]!.port}`;
    // An HS256 token whose payload has the claim `name` (a JSON key, whatever its spelling).
    const { SignJWT } = await import('jose');
    const token = await new SignJWT(JSON.parse(`{"${name}": "alice"}`) as Record<string, unknown>)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    const auth = { authorization: `Bearer ${token}` };
    const first = await request(`${url}/x`, { headers: auth });
    assert.equal(first.status, 200, first.body);
    assert.equal(first.body, 'user alice', 'the claim reached the upstream header');
    assert.ok(first.headers['ratelimit'] !== undefined, 'the policy applied');
    const second = await request(`${url}/x`, { headers: auth });
    assert.equal(second.status, 200, second.body);
    assert.match(String(second.headers['cache-status']), /hit/, 'answered from the store');
    assert.equal(hits, 1);
  });
}
