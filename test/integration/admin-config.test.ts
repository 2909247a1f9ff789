// POST /config/plan and /config/apply over real sockets (issue #15 pt 1): the diff against the
// running config, the same file:line:col errors as `usher validate`, an atomic apply through the
// reload path, and a bad config refused with the old one still serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssues, loadConfigText } from '../../src/config/index.js';
import { admin } from '../helpers/admin.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, type TestUsher } from '../helpers/usher.js';

function yaml(a: TestUpstream, b: TestUpstream, extra = ''): string {
  // log as startUsher sets it: the same settings as the running config.
  return `log: { level: warn, access_log: true }
listeners:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
upstreams:
  app:
    servers: [${a.url}]
  other:
    servers: [${b.url}]
routes:
  - name: api
    match: { path: /api }
    upstream: app
  - name: old
    match: { path: /old }
    upstream: other
${extra}`;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ a: TestUpstream; b: TestUpstream; u: TestUsher; running: string }> {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const running = yaml(a, b);
  const loaded = loadConfigText(running, '/etc/usher/usher.yaml');
  assert.ok(loaded.ok);
  const u = await startUsher({
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [a.url] }, other: { servers: [b.url] } },
    routes: [
      { name: 'api', match: { path: '/api' }, upstream: 'app' },
      { name: 'old', match: { path: '/old' }, upstream: 'other' },
    ],
  });
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });
  return { a, b, u, running };
}

test('config plan: the diff of routes, upstreams, listeners and settings against the running config', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await setup(t);
  const candidate = `log: { level: warn, access_log: true }
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    http2: {}
admin:
  address: 127.0.0.1:0
upstreams:
  app:
    servers: [${a.url}, ${b.url}]
  fresh:
    servers: [${b.url}]
routes:
  - name: api
    match: { path: /api }
    upstream: app
  - name: new
    match: { path: /new }
    upstream: fresh
timeouts:
  keep_alive: 9s
`;
  const r = await admin(u, 'POST', '/config/plan?file=/srv/candidate.yaml', { body: candidate });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.file, '/srv/candidate.yaml');
  const c = r.json.changes;
  assert.deepEqual(c.routes, { added: ['new'], removed: ['old'], changed: [], order_changed: false });
  assert.deepEqual(c.upstreams, { added: ['fresh'], removed: ['other'], changed: ['app'] });
  // Both listeners are 127.0.0.1:0; the second (with HTTP/2) is new.
  assert.deepEqual(c.listeners, { added: [], removed: [], changed: ['127.0.0.1:0'] });
  assert.deepEqual(c.settings, ['timeouts']);
  assert.ok(c.ends.some((e: string) => e.startsWith('upstream app:')));
  assert.ok(c.ends.some((e: string) => e.startsWith('upstream other:')));
  // The long-lived connections a reload would end, by the rules it applies (src/server/drain/).
  assert.ok(c.ends.includes('route old: removed: its long-lived connections (WebSockets, SSE streams, gRPC calls) end by its drain policy: closed gracefully after 30s, cut 10s later'), JSON.stringify(c.ends));
  assert.ok(c.ends.includes("upstream other: removed: long-lived connections to it end by their routes' drain policy"), JSON.stringify(c.ends));
  assert.ok(!c.ends.some((e: string) => e.startsWith('route api')), 'route api is unchanged');
  assert.equal(c.unchanged, false);
  // A plan changes nothing.
  assert.equal((await request(`${u.url}/old`)).body, 'b');
  assert.equal((await request(`${u.url}/new`)).status, 404);
  // The same config again: nothing to do (positions in the file do not count).
  const same = await admin(u, 'POST', '/config/plan', { body: yaml(a, b) });
  assert.equal(same.json.changes.unchanged, true, JSON.stringify(same.json.changes));
  // Reordering routes is a change of order only.
  const [head, api, old] = yaml(a, b).split(/(?= {2}- name: )/) as [string, string, string];
  const swapped = head + old + api;
  const order = await admin(u, 'POST', '/config/plan', { body: swapped });
  assert.deepEqual(order.json.changes.routes, { added: [], removed: [], changed: [], order_changed: true });
});

test('config plan: an invalid candidate gets the same file:line:col errors as usher validate', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await setup(t);
  const bad = yaml(a, b).replace('upstream: other', 'upstream: othr').replace('    servers: [' + a.url + ']', '    servers: [' + a.url + ']\n    balance: fastest');
  const expected = loadConfigText(bad, '/srv/bad.yaml');
  assert.equal(expected.ok, false);
  const r = await admin(u, 'POST', '/config/plan?file=/srv/bad.yaml', { body: bad });
  assert.equal(r.status, 422);
  assert.equal(r.json.ok, false);
  assert.equal(r.json.errors.map((e: { text: string }) => e.text).join('\n'), formatIssues(expected.ok ? [] : expected.errors));
  assert.equal(r.json.errors.length, 2);
  const [first, second] = r.json.errors;
  assert.equal(first.file, '/srv/bad.yaml');
  assert.equal(first.line, 9);
  assert.match(first.text, /^\/srv\/bad\.yaml:9:\d+: error: upstreams\.app\.balance: /);
  assert.match(second.text, /routes\[1\]\.upstream: no upstream named "othr" \(did you mean "other"\?\)/);
  // JSON syntax errors too, and an empty body.
  const json = await admin(u, 'POST', '/config/plan?file=c.json', { body: '{"listeners": [,]}' });
  assert.equal(json.status, 422);
  assert.match(json.json.errors[0].text, /^c\.json:1:\d+: error: invalid JSON/);
  assert.equal((await admin(u, 'POST', '/config/plan', { body: '' })).status, 400);
});

test('config apply: atomic through the reload path; a bad config is refused and the old one keeps serving', { timeout: 120_000 }, async (t) => {
  const { a, b, u } = await setup(t);
  const before = (await admin(u, 'GET', '/status')).json.config.hash;
  // Refused: an error in the file; nothing changes.
  const bad = yaml(a, b).replace('upstream: other', 'upstream: missing');
  const refused = await admin(u, 'POST', '/config/apply?file=/srv/usher.yaml', { body: bad });
  assert.equal(refused.status, 422);
  assert.match(refused.json.errors[0].text, /^\/srv\/usher\.yaml:17:\d+: error: routes\[1\]\.upstream: no upstream named "missing"/);
  assert.equal((await request(`${u.url}/old`)).body, 'b');
  let s = (await admin(u, 'GET', '/status')).json;
  assert.equal(s.config.hash, before);
  assert.equal(s.reloads.length, 1);
  assert.equal(s.reloads[0].source, 'admin');
  assert.equal(s.reloads[0].result, 'failure');
  assert.match(s.reloads[0].errors[0], /no upstream named "missing"/);
  // Refused: valid, but it cannot be applied (its listener's port is taken); nothing changes.
  const busy = yaml(a, b).replace('  - address: 127.0.0.1:0\nadmin', `  - address: 127.0.0.1:0\n  - address: 127.0.0.1:${a.port}\nadmin`);
  const conflict = await admin(u, 'POST', '/config/apply', { body: busy });
  assert.equal(conflict.status, 409, conflict.body);
  assert.match(conflict.json.errors[0].text, /EADDRINUSE.*still serving the previous one/);
  assert.equal((await request(`${u.url}/old`)).body, 'b');
  // Applied: the new route serves at once, the old one is gone, the hash and history say so.
  const next = yaml(a, b, `  - name: added\n    match: { path: /added }\n    respond: { status: 200, body: added }\n`).replace('upstream: other', 'upstream: app');
  const ok = await admin(u, 'POST', '/config/apply?file=/srv/usher.yaml', { body: next });
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(ok.json.changes.routes, { added: ['added'], removed: [], changed: ['old'], order_changed: false });
  assert.equal((await request(`${u.url}/added`)).body, 'added');
  assert.equal((await request(`${u.url}/old`)).body, 'a');
  s = (await admin(u, 'GET', '/status')).json;
  assert.notEqual(s.config.hash, before);
  assert.equal(s.config.hash, ok.json.hash);
  assert.equal(s.config.source, '/srv/usher.yaml');
  assert.deepEqual(s.reloads.map((r: { result: string }) => r.result), ['failure', 'failure', 'success']);
  // The routes' counters start for the new route; the admin listener stayed where it was.
  const routes = (await admin(u, 'GET', '/routes')).json.routes;
  assert.deepEqual(routes.map((r: { name: string }) => r.name), ['api', 'old', 'added']);
  assert.equal(routes[2].counters.total, 1);
});
