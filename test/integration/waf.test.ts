// The WAF (issue 14) over real sockets, with the installed OWASP CRS (Debian's modsecurity-crs)
// at paranoia level 1 in front of a real upstream: a plain GET passes; SQL injection, XSS and
// path traversal caught by the CRS's @rx rules get 403 waf_blocked with the request id, never
// reach the upstream, and leave their rule ids and score in the access log and the audit log;
// detection_only passes and logs; a route with `waf: false` passes; route exclusions apply; a
// URL-encoded body is inspected (phase 2); the WAF sees header names usher drops upstream.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const CRS = '/usr/share/modsecurity-crs';
const BROWSER = { host: 'app.test', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', accept: 'text/html,application/xhtml+xml', 'accept-language': 'en' };

async function setup(t: { after(fn: () => Promise<void>): void }, waf: Record<string, unknown>, routes?: unknown[]): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: routes ?? [{ upstream: 'app' }], waf: { crs: CRS, ...waf } });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

const ATTACKS: Array<[string, string, number]> = [
  ['SQL injection (UNION SELECT)', '/items?id=1%20UNION%20SELECT%20password%20FROM%20users', 942190],
  ['XSS (a script tag)', '/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E', 941110],
  ['path traversal', '/files?name=../../../../etc/passwd', 930110],
];

test('PL1, block: a plain GET passes; attacks get 403 waf_blocked, never reach the upstream, and are in the access and audit logs', async (t) => {
  const dir = tempDir(t);
  const audit = join(dir, 'audit.jsonl');
  const { up, u } = await setup(t, { paranoia_level: 1, audit_log: audit });
  const ok = await request(`${u.url}/index.html?q=hello+world&page=2`, { headers: BROWSER });
  await waitFor(() => u.access.length > 0, 5000, 'the access-log line');
  assert.equal(ok.status, 200, JSON.stringify(u.access[0]));
  assert.equal(ok.body, 'app');
  for (const [what, path, rule] of ATTACKS) {
    const r = await request(`${u.url}${path}`, { headers: { ...BROWSER, accept: 'application/json' } });
    assert.equal(r.status, 403, what);
    const body = JSON.parse(r.body) as { reason: string; request_id: string };
    assert.equal(body.reason, 'waf_blocked', what);
    assert.equal(body.request_id, r.headers['x-request-id'], what);
    await waitFor(() => u.access.some((l) => l.request_id === body.request_id), 5000, `the access-log line of ${what}`);
    const line = u.access.find((l) => l.request_id === body.request_id)!;
    assert.equal(line.reason, 'waf_blocked');
    assert.ok((line.waf_rules as number[]).includes(rule), `${what}: ${JSON.stringify(line.waf_rules)} has ${rule}`);
    assert.ok((line.waf_rules as number[]).includes(949110), `${what}: the CRS's blocking evaluation decided`);
    assert.ok((line.waf_score as number) >= 5, what);
  }
  assert.equal(up.requests.length, 1, 'only the plain GET went upstream');
  const plain = u.access.find((l) => l.status === 200)!;
  assert.deepEqual(plain.waf_rules, []);
  assert.equal(plain.waf_score, 0);
  await waitFor(() => {
    try {
      return readFileSync(audit, 'utf8').trim().split('\n').length >= ATTACKS.length;
    } catch {
      return false;
    }
  }, 5000, 'the audit log lines');
  const records = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.length, ATTACKS.length, 'only blocked or flagged requests are audited');
  for (const rec of records) {
    assert.equal(rec.action, 'blocked');
    assert.equal(rec.status, 403);
    assert.equal(rec.interrupted_by, 949110);
    assert.equal(typeof rec.request_id, 'string');
    const rules = rec.rules as Array<{ id: number; data: string }>;
    assert.ok(rules.length >= 2);
    assert.ok(rules.every((m) => m.data.length <= 203), 'matched data is truncated');
  }
  assert.match(String((records[2]!.rules as Array<{ data: string }>)[0]!.data), /etc\/passwd|\.\.\//);
});

test('detection_only: attacks pass to the upstream and are logged with their rules', async (t) => {
  const { up, u } = await setup(t, { mode: 'detection_only' });
  const r = await request(`${u.url}${ATTACKS[0]![1]}`, { headers: BROWSER });
  assert.equal(r.status, 200);
  assert.equal(up.requests.length, 1);
  await waitFor(() => u.access.length > 0, 5000, 'the access-log line');
  assert.ok((u.access[0]!.waf_rules as number[]).includes(942190));
  assert.ok((u.access[0]!.waf_score as number) >= 5);
});

test('a route with waf: false passes; a route exclusion removes a rule; a route may run detection_only', async (t) => {
  const { up, u } = await setup(t, {}, [
    { match: { path: '/open/' }, upstream: 'app', waf: false },
    { match: { path: '/cms/' }, upstream: 'app', waf: { exclude_targets: [{ tags: ['attack-sqli'], targets: ['ARGS:id'] }] } },
    { match: { path: '/watch/' }, upstream: 'app', waf: { mode: 'detection_only' } },
    { upstream: 'app' },
  ]);
  const attack = '?id=1%20UNION%20SELECT%20password%20FROM%20users';
  assert.equal((await request(`${u.url}/open/x${attack}`, { headers: BROWSER })).status, 200, 'waf: false');
  assert.equal((await request(`${u.url}/cms/x${attack}`, { headers: BROWSER })).status, 200, 'ARGS:id excluded from the SQLi rules');
  assert.equal((await request(`${u.url}/cms/x?other=1%20UNION%20SELECT%20password%20FROM%20users`, { headers: BROWSER })).status, 403, 'other arguments still checked');
  assert.equal((await request(`${u.url}/watch/x${attack}`, { headers: BROWSER })).status, 200, 'detection_only route');
  assert.equal((await request(`${u.url}/x${attack}`, { headers: BROWSER })).status, 403, 'the default route blocks');
  assert.equal(up.requests.length, 3);
});

test('phase 2: a URL-encoded body is inspected; a benign one passes with its body intact', async (t) => {
  const { up, u } = await setup(t, {});
  const form = { ...BROWSER, 'content-type': 'application/x-www-form-urlencoded' };
  const bad = await request(`${u.url}/login`, { method: 'POST', headers: form, body: 'user=admin&q=1%20UNION%20SELECT%20password%20FROM%20users' });
  assert.equal(bad.status, 403);
  assert.equal(up.requests.length, 0);
  const good = await request(`${u.url}/login`, { method: 'POST', headers: form, body: 'user=alice&comment=hello+there' });
  assert.equal(good.status, 200);
  assert.equal(up.requests.length, 1);
  const json = await request(`${u.url}/api`, { method: 'POST', headers: { ...BROWSER, 'content-type': 'application/json' }, body: '{"q": "1 UNION SELECT password FROM users"}' });
  assert.equal(json.status, 403, 'JSON bodies are parsed into ARGS');
  const broken = await request(`${u.url}/api`, { method: 'POST', headers: { ...BROWSER, 'content-type': 'application/json' }, body: '{"q": ' });
  assert.equal(broken.status, 403, 'a body the processor cannot parse is refused (REQBODY_ERROR)');
});

test('phase 2: an XML body is parsed (XML:/*): an attack in element text is blocked, a well-formed one passes, a malformed or missing one is refused as ModSecurity refuses it', async (t) => {
  const { up, u } = await setup(t, {});
  const xml = { ...BROWSER, 'content-type': 'text/xml; charset=utf-8' };
  const good = await request(`${u.url}/ws`, { method: 'POST', headers: xml, body: '<order id="7"><item>x200 trail shoe</item></order>' });
  assert.equal(good.status, 200);
  assert.equal(up.requests.length, 1);
  const bad = await request(`${u.url}/ws`, { method: 'POST', headers: xml, body: '<q><![CDATA[<script>alert(1)</script>]]></q>' });
  assert.equal(bad.status, 403);
  const broken = await request(`${u.url}/ws`, { method: 'POST', headers: xml, body: '<order><item>1</order></item>' });
  assert.equal(broken.status, 403, 'REQBODY_ERROR: XML that is not well-formed');
  // ModSecurity runs the XML processor on a missing body too, and the empty document fails
  const none = await request(`${u.url}/ws`, { headers: xml });
  assert.equal(none.status, 403, 'an XML Content-Type without a body');
  const plain = await request(`${u.url}/ws`, { headers: BROWSER });
  assert.equal(plain.status, 200, 'no XML Content-Type, no body: passes');
  assert.equal(up.requests.length, 2);
});

test('with SecRequestBodyAccess Off no body processor runs: an empty or broken XML body passes, as nginx + ModSecurity pass it', async (t) => {
  const { up, u } = await setup(t, { rules: ['SecRequestBodyAccess Off'] });
  const xml = { ...BROWSER, 'content-type': 'text/xml; charset=utf-8' };
  assert.equal((await request(`${u.url}/ws`, { headers: xml })).status, 200, 'an XML Content-Type without a body');
  assert.equal((await request(`${u.url}/ws`, { method: 'POST', headers: xml, body: '<order><item>1</order></item>' })).status, 200, 'XML that is not well-formed');
  await waitFor(() => u.access.length >= 2, 5000, 'two access-log lines');
  assert.deepEqual(u.access.map((l) => l.waf_rules), [[], []]);
  assert.equal(up.requests.length, 2);
});

test('the WAF sees header names usher drops upstream (underscores), as ModSecurity behind nginx with ignore_invalid_headers off', async (t) => {
  const { up, u } = await setup(t, { rules: ['SecRule REQUEST_HEADERS_NAMES "@rx _" "id:10001,phase:1,deny,log,msg:\'underscore header\'"'] });
  assert.equal((await request(`${u.url}/x`, { headers: { ...BROWSER, 'x-api-key': 'k' } })).status, 200);
  assert.equal(up.requests[0]!.rawHeaders.some((h) => h.toLowerCase() === 'x-api-key'), true);
  const r = await request(`${u.url}/x`, { headers: { ...BROWSER, x_api_key: 'k' } });
  assert.equal(r.status, 403);
  await waitFor(() => u.access.length >= 2, 5000, 'two access-log lines');
  assert.deepEqual(u.access[1]!.waf_rules, [10001]);
  assert.equal(up.requests.length, 1);
});
