// JWT auth (issue #13 pt 3) over real sockets: a real upstream behind usher, tokens signed by
// the test with jose; a JWKS served by a real HTTP server the test starts and rotates. Expired,
// not yet valid, wrong audience, wrong key, alg none, a rotated JWKS, claims to headers, a
// cookie token, a rate limit keyed on a claim; every refusal logged with its reason code.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { certDir } from '../helpers/certs.js';
import { request, type Reply } from '../helpers/client.js';
import { tempDir, writeFile } from '../helpers/cli.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

const SECRET = 'an HS256 secret of more than thirty-two bytes'; // 45 bytes: HS256 only
const now = () => Math.floor(Date.now() / 1000);

async function hs(claims: JWTPayload, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}
async function signed(claims: JWTPayload, key: KeyObject, alg: string, kid?: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key);
}

/** A JWKS server whose key set the test replaces; counts the fetches. */
async function startJwks(t: { after(fn: () => Promise<void>): void }) {
  const state = { keys: [] as JWK[], fetches: 0 };
  const server: Server = createServer((req, res) => {
    state.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json` };
}

const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

test('jwt: valid tokens pass with their claims copied upstream; spoofed claim headers and the token do not reach the upstream', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const es = ec();
  const ed = generateKeyPairSync('ed25519');
  const dir = tempDir(t);
  const esFile = writeFile(join(dir, 'es.jwk.json'), JSON.stringify(await exportJWK(es.publicKey)));
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] } },
    routes: [
      {
        name: 'hs',
        match: { path: '/hs' },
        upstream: 'app',
        auth: { jwt: { secret: SECRET, issuer: 'https://id.test', audience: ['api', 'other'], require: { scope: 'read' }, claims_to_headers: { sub: 'X-User-Id', roles: 'x-roles' } } },
      },
      { name: 'rs', match: { path: '/rs' }, upstream: 'app', auth: { jwt: { key: rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string, forward_authorization: true } } },
      { name: 'es', match: { path: '/es' }, upstream: 'app', auth: { jwt: { key_file: esFile } } },
      { name: 'ed', match: { path: '/ed' }, upstream: 'app', auth: { jwt: { key: (await exportJWK(ed.publicKey)) as Record<string, unknown>, cookie: 'session' } } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const good = await hs({ sub: 'alice', iss: 'https://id.test', aud: 'api', scope: 'read write', roles: ['admin', 'ops'], exp: now() + 60 });
  const r = await request(`${u.url}/hs/x`, { headers: { ...bearer(good), 'x-user-id': 'mallory', 'X-Roles': 'root' } });
  assert.equal(r.status, 200, r.body);
  const seen = up.requests.at(-1)!;
  assert.equal(seen.headers['x-user-id'], 'alice', 'the claim, not the client\'s copy');
  assert.equal(seen.headers['x-roles'], 'admin, ops');
  assert.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-user-id').length, 1, 'the client\'s copy removed');
  assert.equal(seen.headers.authorization, undefined, 'the token is not forwarded by default');
  // The same token again: remembered (no second verification), same result.
  assert.equal((await request(`${u.url}/hs/x`, { headers: bearer(good) })).status, 200);
  assert.equal(up.requests.at(-1)!.headers['x-user-id'], 'alice');

  const rs = await signed({ sub: 'bob' }, rsa.privateKey, 'PS256');
  assert.equal((await request(`${u.url}/rs`, { headers: bearer(rs) })).status, 200);
  assert.equal(up.requests.at(-1)!.headers.authorization, `Bearer ${rs}`, 'forward_authorization');
  assert.equal((await request(`${u.url}/es`, { headers: bearer(await signed({ sub: 'carol' }, es.privateKey, 'ES256')) })).status, 200);
  const edToken = await signed({ sub: 'dave' }, ed.privateKey, 'EdDSA');
  assert.equal((await request(`${u.url}/ed`, { headers: { cookie: `a=b; session=${edToken}` } })).status, 200, 'the token from the cookie');
  assert.equal((await request(`${u.url}/ed`, { headers: bearer(edToken) })).status, 200, 'or from Authorization');
  assert.equal(up.requests.length, 6);
});

test('jwt: expired, not yet valid, wrong audience, wrong issuer, wrong key, alg none and missing claims are refused, each logged with its reason', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'hs', match: { path: '/hs' }, upstream: 'app', auth: { jwt: { secret: SECRET, realm: 'api', issuer: 'https://id.test', audience: 'api', require: { scope: ['read', 'write'], admin: true } } } },
      { name: 'lenient', match: { path: '/lenient' }, upstream: 'app', auth: { jwt: { secret: SECRET, leeway: '1m' } } },
      { name: 'rs', match: { path: '/rs' }, upstream: 'app', auth: { jwt: { key: rsaPem } } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const base = { iss: 'https://id.test', aud: 'api', scope: 'read write', admin: 1 };
  const invalid = (why: string) => `Bearer realm="api", error="invalid_token", error_description="${why}"`;
  const cases: [string, Record<string, string>, number, string, string][] = [
    ['no token', {}, 401, 'auth_required', 'Bearer realm="api"'],
    ['basic credentials', { authorization: 'Basic YTpi' }, 401, 'auth_required', 'Bearer realm="api"'],
    ['not token syntax', { authorization: 'Bearer a b' }, 400, 'auth_malformed', 'Bearer realm="api", error="invalid_request", error_description="the bearer token is not in token syntax"'],
    ['not a JWT', bearer('abc.def'), 401, 'auth_invalid', invalid('the token is malformed')],
    ['expired', bearer(await hs({ ...base, exp: now() - 10 })), 401, 'auth_invalid', invalid('the token has expired')],
    ['not yet valid', bearer(await hs({ ...base, nbf: now() + 600 })), 401, 'auth_invalid', invalid('the token is not valid yet')],
    ['wrong audience', bearer(await hs({ ...base, aud: 'billing' })), 401, 'auth_invalid', invalid('unexpected audience')],
    ['wrong issuer', bearer(await hs({ ...base, iss: 'https://evil.test' })), 401, 'auth_invalid', invalid('unexpected issuer')],
    ['wrong key', bearer(await hs(base, 'another secret, also long enough to sign')), 401, 'auth_invalid', invalid('the signature does not verify')],
    ['alg none', bearer(new UnsecuredJWT(base).encode()), 401, 'auth_invalid', invalid('the token algorithm is not accepted')],
    ['an HS algorithm the secret is too short for', bearer(await hs(base, SECRET, 'HS512')), 401, 'auth_invalid', invalid('the token algorithm is not accepted')],
    ['a scope missing', bearer(await hs({ ...base, scope: 'read' })), 403, 'auth_forbidden', 'Bearer realm="api", error="insufficient_scope", error_description="the token lacks the required claim scope"'],
    ['a claim missing', bearer(await hs({ ...base, admin: undefined })), 403, 'auth_forbidden', 'Bearer realm="api", error="insufficient_scope", error_description="the token lacks the required claim admin"'],
  ];
  assert.equal((await request(`${u.url}/hs`, { headers: bearer(await hs(base)) })).status, 200, 'the base token passes');
  for (const [what, headers, status, reason, challenge] of cases) {
    const r = await request(`${u.url}/hs`, { headers });
    assert.equal(r.status, status, `${what}: ${r.body}`);
    assert.match(r.body, new RegExp(`reason: ${reason}`), what);
    assert.equal(r.headers['www-authenticate'], challenge, what);
  }
  // RS256 route: an HS256 token "signed" with the public key as a secret (algorithm confusion).
  const confused = await hs({ sub: 'x' }, rsaPem);
  const c = await request(`${u.url}/rs`, { headers: bearer(confused) });
  assert.equal(c.status, 401);
  assert.match(String(c.headers['www-authenticate']), /the token algorithm is not accepted/);
  assert.equal((await request(`${u.url}/rs`, { headers: bearer(new UnsecuredJWT({ sub: 'x' }).encode()) })).status, 401, 'alg none on RS too');
  // leeway: a token expired 10 s ago still passes where 1 m of skew is allowed.
  assert.equal((await request(`${u.url}/lenient`, { headers: bearer(await hs({ exp: now() - 10 })) })).status, 200);
  assert.equal((await request(`${u.url}/lenient`, { headers: bearer(await hs({ exp: now() - 120 })) })).status, 401);

  assert.equal(up.requests.length, 2, 'only the accepted ones reached the upstream');
  await waitFor(() => u.access.length >= cases.length + 5, 5000, 'the access-log lines');
  assert.deepEqual(
    u.access.filter((l) => l.route === 'hs' && l.status !== 200).map((l) => [l.status, l.reason]),
    cases.map(([, , s, r]) => [s, r]),
  );
});

test('jwt: keys from a JWKS URL, fetched once, refetched for a rotated key id, refetches rate-limited; an unreachable JWKS is 503 auth_unavailable', async (t) => {
  const jwks = await startJwks(t);
  const a = ec();
  const b = ec();
  jwks.state.keys = [{ ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'ES256', use: 'sig' }];
  const up = await startUpstream('app');
  const dead = `http://127.0.0.1:${await closedPort()}/jwks.json`;
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'rotating', match: { path: '/rotating' }, upstream: 'app', auth: { jwt: { jwks: { url: jwks.url, cooldown: 0 } } } },
      { name: 'calm', match: { path: '/calm' }, upstream: 'app', auth: { jwt: { jwks: { url: jwks.url, cooldown: '1h' } } } },
      { name: 'dead', match: { path: '/dead' }, upstream: 'app', auth: { jwt: { jwks: { url: dead, timeout: '2s' } } } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const tokenA = await signed({ sub: 'a' }, a.privateKey, 'ES256', 'a');
  const tokenB = await signed({ sub: 'b' }, b.privateKey, 'ES256', 'b');
  const get = (path: string, token: string): Promise<Reply> => request(`${u.url}${path}`, { headers: bearer(token) });

  assert.equal((await get('/rotating', tokenA)).status, 200);
  assert.equal((await get('/calm', tokenA)).status, 200);
  assert.equal(jwks.state.fetches, 2, 'one fetch per route');
  assert.equal((await get('/rotating', await signed({ sub: 'a2' }, a.privateKey, 'ES256', 'a'))).status, 200);
  assert.equal(jwks.state.fetches, 2, 'a known kid is served from the cached set');

  // Rotation: the server now publishes b (and drops a).
  jwks.state.keys = [{ ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256', use: 'sig' }];
  assert.equal((await get('/rotating', tokenB)).status, 200, 'the unknown kid made usher fetch the set again');
  assert.equal(jwks.state.fetches, 3);
  // Within its cooldown the calm route does not fetch again, however many unknown kids it sees.
  for (let i = 0; i < 3; i++) {
    const r = await get('/calm', tokenB);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /no key matches the token/);
  }
  assert.equal(jwks.state.fetches, 3, 'refetches are rate-limited by the cooldown');

  const d = await get('/dead', tokenA);
  assert.equal(d.status, 503);
  assert.match(d.body, /reason: auth_unavailable/);
  await waitFor(() => u.access.some((l) => l.reason === 'auth_unavailable'), 5000, 'the access-log line');
});

test('jwt: a rate limit keyed on a verified claim counts per user', async (t) => {
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] } },
    rate_limits: { policies: { per_user: { rate: 2, per: '1h', key: [{ jwt_claim: 'sub' }] } } },
    routes: [{ name: 'api', upstream: 'app', auth: { jwt: { secret: SECRET } }, rate_limits: ['per_user'] }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const alice = bearer(await hs({ sub: 'alice' }));
  const alice2 = bearer(await hs({ sub: 'alice', jti: 'another token' }));
  const bob = bearer(await hs({ sub: 'bob' }));
  const statuses = [];
  for (const h of [alice, alice2, alice, bob, bob, bob]) statuses.push((await request(u.url, { headers: h })).status);
  assert.deepEqual(statuses, [200, 200, 429, 200, 200, 429], 'two per user, whichever token they use');
  // A refused token is refused before the limit counts it.
  assert.equal((await request(u.url, { headers: bearer('x.y.z') })).status, 401);
});

test('jwt: a JWKS fetched through an upstream uses its TLS settings (a private CA); the same URL fetched directly does not verify', async (t) => {
  const certs = certDir();
  t.after(() => certs.remove());
  const ca = certs.ca('jwks-ca');
  const leaf = certs.issue('jwks', { cn: 'id.test', sans: ['DNS:id.test', 'IP:127.0.0.1'], ca });
  const key = ec();
  const jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'ES256' };
  let fetches = 0;
  const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    fetches++;
    res.writeHead(req.url === '/keys.json' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const up = await startUpstream('app');
  const u = await startUsher({
    upstreams: { app: { servers: [up.url] }, idp: { servers: [origin], tls: { ca: ca.certPath } } },
    routes: [
      { name: 'via', match: { path: '/via' }, upstream: 'app', auth: { jwt: { jwks: { upstream: 'idp', path: '/keys.json' } } } },
      { name: 'wrong-path', match: { path: '/wrong-path' }, upstream: 'app', auth: { jwt: { jwks: { upstream: 'idp', path: '/nope.json' } } } },
      { name: 'direct', match: { path: '/direct' }, upstream: 'app', auth: { jwt: { jwks: { url: `${origin}/keys.json` } } } },
    ],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const token = bearer(await signed({ sub: 'a' }, key.privateKey, 'ES256', 'k1'));
  const via = await request(`${u.url}/via`, { headers: token });
  assert.equal(via.status, 200, via.body);
  assert.equal(fetches, 1);
  assert.equal((await request(`${u.url}/wrong-path`, { headers: token })).status, 503, 'a 404 from the JWKS server: no keys');
  assert.equal(fetches, 2);
  const direct = await request(`${u.url}/direct`, { headers: token });
  assert.equal(direct.status, 503, 'the private CA is not among Node\'s roots');
  assert.match(direct.body, /reason: auth_unavailable/);
  assert.equal(fetches, 2, 'the direct fetch failed in the TLS handshake');
});
