// Basic auth (issue #13 pt 3) over real sockets, a real upstream behind usher: right, wrong and
// malformed credentials, users inline ($2y$ as htpasswd writes them) and from an htpasswd file
// re-read on reload, the client's Authorization removed before the upstream unless configured,
// and every refusal in the access log with its reason code.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { request } from '../helpers/client.js';
import { tempDir, writeFile } from '../helpers/cli.js';
import { startUpstream } from '../helpers/upstream.js';
import { config, startUsher, waitFor } from '../helpers/usher.js';

/** A bcrypt hash as `htpasswd -B` writes it ($2y$), at the lowest cost so the test stays quick. */
const htpasswdHash = (password: string) => bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$');
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const dir = tempDir(t);
  const file = writeFile(join(dir, 'users.htpasswd'), `# staff\nbob:${htpasswdHash('builder')}\n\ncarol:${bcrypt.hashSync('c4rol', 4)}\n`);
  const up = await startUpstream('app');
  const settings = (users: string) => ({
    upstreams: { app: { servers: [up.url] } },
    routes: [
      { name: 'staff', match: { path: '/staff' }, upstream: 'app', auth: { basic: { realm: 'Staff "only"', users: { alice: htpasswdHash('wonderland') }, htpasswd: users } } },
      { name: 'pass', match: { path: '/pass' }, upstream: 'app', auth: { basic: { users: { alice: htpasswdHash('wonderland') }, forward_authorization: true, cache: 0 } } },
      { name: 'open', upstream: 'app' },
    ],
  });
  const u = await startUsher(settings(file));
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { u, up, file, settings };
}

test('basic auth: right credentials pass, and the upstream does not see the Authorization field', async (t) => {
  const { u, up } = await setup(t);
  for (const [user, password] of [['alice', 'wonderland'], ['bob', 'builder'], ['carol', 'c4rol'], ['alice', 'wonderland']] as const) {
    const r = await request(`${u.url}/staff/x`, { headers: { authorization: basic(user, password) } });
    assert.equal(r.status, 200, `${user} is let in`);
    assert.equal(r.body, 'app');
  }
  assert.equal(up.requests.length, 4);
  for (const req of up.requests) assert.equal(req.headers.authorization, undefined, 'Authorization removed before the upstream');
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('bob', 'builder').replace('Basic', 'bAsIc') } })).status, 200);
  // forward_authorization: the upstream gets it as sent.
  const r = await request(`${u.url}/pass`, { headers: { authorization: basic('alice', 'wonderland') } });
  assert.equal(r.status, 200);
  assert.equal(up.requests.at(-1)!.headers.authorization, basic('alice', 'wonderland'));
  // A route without auth is untouched, Authorization included.
  await request(`${u.url}/other`, { headers: { authorization: 'Bearer abc' } });
  assert.equal(up.requests.at(-1)!.headers.authorization, 'Bearer abc');
});

test('basic auth: missing, wrong and malformed credentials are refused with their reason codes and logged', async (t) => {
  const { u, up } = await setup(t);
  const cases: [string | undefined, number, string][] = [
    [undefined, 401, 'auth_required'],
    ['Bearer abc.def.ghi', 401, 'auth_required'], // another scheme: no Basic credentials
    [basic('alice', 'wrong'), 401, 'auth_invalid'],
    [basic('mallory', 'wonderland'), 401, 'auth_invalid'], // unknown user
    [basic('bob', ''), 401, 'auth_invalid'],
    ['Basic', 400, 'auth_malformed'],
    ['Basic !!not-base64!!', 400, 'auth_malformed'],
    [`Basic ${Buffer.from('no-colon').toString('base64')}`, 400, 'auth_malformed'],
  ];
  for (const [authorization, status, reason] of cases) {
    const r = await request(`${u.url}/staff`, { headers: authorization === undefined ? {} : { authorization } });
    assert.equal(r.status, status, `${authorization}: status`);
    assert.match(r.body, new RegExp(`reason: ${reason}`), `${authorization}: reason in the body`);
    assert.equal(r.headers['www-authenticate'], 'Basic realm="Staff \\"only\\"", charset="UTF-8"', `${authorization}: the challenge`);
    assert.ok(r.headers['x-request-id']);
  }
  const json = await request(`${u.url}/staff`, { headers: { accept: 'application/json' } });
  assert.equal((JSON.parse(json.body) as { reason: string }).reason, 'auth_required');
  assert.equal(up.requests.length, 0, 'nothing refused reached the upstream');
  await waitFor(() => u.access.length >= cases.length + 1, 5000, 'the access-log lines');
  assert.deepEqual(
    u.access.slice(0, cases.length).map((l) => [l.status, l.reason, l.route]),
    cases.map(([, status, reason]) => [status, reason, 'staff']),
  );
});

test('basic auth: parallel requests with the same new credentials all pass; the htpasswd file is re-read on reload', async (t) => {
  const { u, file, settings } = await setup(t);
  const rs = await Promise.all(Array.from({ length: 20 }, () => request(`${u.url}/staff`, { headers: { authorization: basic('bob', 'builder') } })));
  assert.deepEqual(new Set(rs.map((r) => r.status)), new Set([200]));
  // A new password for bob, and dave added: effective after the reload, the old password refused
  // at once (a reload drops remembered verifications).
  writeFile(file, `bob:${htpasswdHash('new-pass')}\ndave:${htpasswdHash('d')}\n`);
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('dave', 'd') } })).status, 401, 'not before the reload');
  await u.usher.reload(config({ log: { level: 'warn', access_log: true }, ...settings(file) }));
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('bob', 'builder') } })).status, 401);
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('bob', 'new-pass') } })).status, 200);
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('dave', 'd') } })).status, 200);
  assert.equal((await request(`${u.url}/staff`, { headers: { authorization: basic('carol', 'c4rol') } })).status, 401, 'carol left the file');
});
