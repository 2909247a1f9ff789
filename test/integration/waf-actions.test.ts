// The WAF's disruptive actions over real sockets (issue 14): the installed OWASP CRS at PL1 and
// extra rules of our own through `waf.rules`, in front of a real upstream. deny,status:418 gets
// 418 with usher's error body (request id, waf_blocked); drop closes the HTTP/1.1 connection
// with no response at all and resets only its stream on HTTP/2 (the session carries on);
// redirect gets 302 and the expanded Location (%{rule.id} empty in it, as in v3); allow lets the request through, the later deny
// rule and the CRS's own phase-2 rules not firing (an XSS payload reaches the upstream); the
// access and audit logs record the action. The same rules in nginx + ModSecurity v3 + the same
// CRS answer the same, except drop: libmodsecurity v3 runs deny instead of drop ("executing
// deny instead of drop"), so nginx answers 403 there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { h2request, h2session } from '../helpers/h2.js';
import { startModSecurity } from '../helpers/modsecurity-crs.js';
import { RawConnection, within } from '../helpers/raw.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

const CRS = '/usr/share/modsecurity-crs';
const BROWSER = { host: 'app.test', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', accept: 'text/html,application/xhtml+xml', 'accept-language': 'en' };

const RULES = [
  `SecRule REQUEST_FILENAME "@streq /teapot" "id:10100,phase:1,log,deny,status:418,msg:'teapot'"`,
  `SecRule REQUEST_FILENAME "@streq /drop" "id:10101,phase:1,log,drop,msg:'drop'"`,
  `SecRule REQUEST_FILENAME "@streq /old" "id:10102,phase:1,log,redirect:'http://%{request_headers.host}/new?from=%{rule.id}&v=%{matched_var}',msg:'moved'"`,
  `SecRule REQUEST_FILENAME "@streq /trusted" "id:10103,phase:1,log,allow,msg:'trusted'"`,
  `SecRule REQUEST_FILENAME "@streq /trusted" "id:10104,phase:1,log,deny,status:418,msg:'never'"`,
  `SecRule ARGS:cmd "@streq drop" "id:10105,phase:2,log,drop,msg:'drop in phase 2'"`,
  `SecRule ARGS:next "@rx ." "id:10112,phase:1,t:none,t:urlDecodeUni,log,redirect:'http://app.test/%{matched_var}'"`,
  `SecRule REQUEST_FILENAME "@streq /moved" "id:10106,phase:1,log,status:301,redirect:'http://app.test/new'"`,
  `SecRule REQUEST_FILENAME "@streq /phase" "id:10107,phase:1,log,allow:phase"`,
  `SecRule REQUEST_FILENAME "@streq /phase" "id:10108,phase:1,log,deny,status:418"`,
  `SecRule REQUEST_FILENAME "@beginsWith /phase" "id:10109,phase:2,log,deny,status:429"`,
  `SecRule REQUEST_FILENAME "@streq /request" "id:10110,phase:1,log,allow:request"`,
  `SecRule REQUEST_FILENAME "@beginsWith /request" "id:10111,phase:2,log,deny,status:429"`,
].join('\n');

/** An XSS the CRS blocks at PL1 (941110 and 949110 in phase 2). */
const XSS = '?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E';

test('deny with status:418, drop (HTTP/1.1 and HTTP/2), redirect with macros and allow, with the action in the access and audit logs', async (t) => {
  const dir = tempDir(t);
  const audit = join(dir, 'audit.jsonl');
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
    waf: { crs: CRS, paranoia_level: 1, audit_log: audit, rules: [RULES] },
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const line = async (path: string): Promise<Record<string, unknown>> => {
    await waitFor(() => u.access.some((l) => l.path === path), 5000, `the access-log line of ${path}`);
    return u.access.find((l) => l.path === path)!;
  };

  const teapot = await request(`${u.url}/teapot`, { headers: { ...BROWSER, accept: 'application/json' } });
  assert.equal(teapot.status, 418);
  const body = JSON.parse(teapot.body) as { status: number; reason: string; request_id: string };
  assert.equal(body.status, 418);
  assert.equal(body.reason, 'waf_blocked');
  assert.equal(body.request_id, teapot.headers['x-request-id']);
  const tl = await line('/teapot');
  assert.equal(tl.status, 418);
  assert.equal(tl.reason, 'waf_blocked');
  assert.equal(tl.waf_action, 'deny');
  assert.deepEqual(tl.waf_rules, [10100]);

  // drop on HTTP/1.1: the connection closes and not a byte of response comes back
  const raw = new RawConnection(u.port);
  raw.write('GET /drop HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n');
  await within(raw.closed, 5000, 'the dropped connection closing');
  assert.equal(raw.received, '', 'no response at all');
  const dl = await line('/drop');
  assert.equal(dl.waf_action, 'drop');
  assert.equal(dl.reason, 'waf_blocked');
  assert.equal(dl.status, 0, 'no status was sent');
  assert.deepEqual(dl.waf_rules, [10101]);

  // drop in phase 2: with no body (usher's upstream_request) and after reading a body (request_body)
  for (const [what, text] of [
    ['GET /p2?cmd=drop', 'GET /p2?cmd=drop HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n'],
    ['POST /p2 cmd=drop', 'POST /p2 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\ncmd=drop'],
  ] as const) {
    const c = new RawConnection(u.port);
    c.write(text);
    await within(c.closed, 5000, `${what}: the dropped connection closing`);
    assert.equal(c.received, '', `${what}: no response at all`);
  }
  assert.deepEqual((await line('/p2?cmd=drop')).waf_rules, [10105]);
  assert.equal((await line('/p2')).waf_action, 'drop');

  // drop on HTTP/2: that stream is reset (PROTOCOL_ERROR, as nginx resets a `return 444`), the session goes on
  const session = await h2session(u.url);
  t.after(() => session.close());
  const dropped = await h2request(session, { ':path': '/drop?h2', ':authority': 'app.test', 'user-agent': 'Mozilla/5.0', accept: 'text/html' }).then(
    () => undefined,
    (err: Error & { code?: string }) => err,
  );
  assert.ok(dropped !== undefined, 'the HTTP/2 request got no response');
  assert.match(dropped.message, /NGHTTP2_PROTOCOL_ERROR/, dropped.message);
  const after = await h2request(session, { ':path': '/index.html', ':authority': 'app.test', 'user-agent': 'Mozilla/5.0', accept: 'text/html' });
  assert.equal(after.status, 200, 'the same session serves the next request');
  assert.equal((await line('/drop?h2')).waf_action, 'drop');

  const old = await request(`${u.url}/old?x=1`, { headers: BROWSER });
  assert.equal(old.status, 302);
  assert.equal(old.headers.location, 'http://app.test/new?from=&v=/old');
  assert.equal(typeof old.headers['x-request-id'], 'string');
  const ol = await line('/old?x=1');
  assert.equal(ol.waf_action, 'redirect');
  assert.equal(ol.status, 302);

  const trusted = await request(`${u.url}/trusted${XSS}`, { headers: BROWSER });
  assert.equal(trusted.status, 200, 'allow: the later deny rule and the CRS’s phase 2 do not run');
  assert.equal(trusted.body, 'app');
  const al = await line(`/trusted${XSS}`);
  assert.equal(al.waf_action, 'allow');
  assert.deepEqual(al.waf_rules, [10103]);
  // the same XSS elsewhere is still blocked by the CRS
  assert.equal((await request(`${u.url}/other${XSS}`, { headers: BROWSER })).status, 403);
  assert.equal((await line(`/other${XSS}`)).waf_action, 'deny');

  // a redirect URL whose macro brings in a CR LF: percent-encoded, not a second header
  const split = await request(`${u.url}/go?next=%250d%250aSet-Cookie:%20x=1`, { headers: BROWSER });
  assert.equal(split.status, 302);
  assert.equal(split.headers.location, 'http://app.test/%0D%0ASet-Cookie: x=1');
  assert.equal(split.headers['set-cookie'], undefined);

  const moved = await request(`${u.url}/moved`, { headers: BROWSER });
  assert.equal(moved.status, 301, 'redirect keeps a 301-307 status:');
  assert.equal(moved.headers.location, 'http://app.test/new');
  assert.equal((await request(`${u.url}/phase`, { headers: BROWSER })).status, 429, 'allow:phase skips the rest of phase 1 (418), phase 2 denies');
  const ar = await request(`${u.url}/request`, { headers: BROWSER });
  assert.equal(ar.status, 200, 'allow:request skips phase 2');
  assert.equal((await line('/request')).waf_action, 'allow');

  const plain = await request(`${u.url}/index.html`, { headers: BROWSER });
  assert.equal(plain.status, 200);
  assert.equal((await line('/index.html')).waf_action, 'pass');
  assert.equal(up.requests.filter((r) => r.url?.startsWith('/trusted') ?? false).length, 1);
  assert.ok(!up.requests.some((r) => /^\/(teapot|drop|old|other|p2|go)/.test(r.url ?? '')), 'nothing disrupted reached the upstream');

  await waitFor(() => {
    try {
      return readFileSync(audit, 'utf8').trim().split('\n').length >= 6;
    } catch {
      return false;
    }
  }, 5000, 'the audit log lines');
  const records = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const byTarget = (target: string): Record<string, unknown> | undefined => records.find((r) => r.target === target);
  assert.equal(byTarget('/teapot')?.disruptive, 'deny');
  assert.equal(byTarget('/teapot')?.status, 418);
  assert.equal(byTarget('/drop')?.disruptive, 'drop');
  assert.equal(byTarget('/old?x=1')?.disruptive, 'redirect');
  assert.equal(byTarget(`/trusted${XSS}`)?.disruptive, 'allow');
  assert.equal(byTarget(`/trusted${XSS}`)?.allowed_by, 10103);
  assert.equal(byTarget(`/other${XSS}`)?.interrupted_by, 949110);
});

test('detection_only never disrupts: deny, drop and redirect pass and are audited with what they would have done', async (t) => {
  const dir = tempDir(t);
  const audit = join(dir, 'audit.jsonl');
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], waf: { crs: CRS, mode: 'detection_only', audit_log: audit, rules: [RULES] } });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  for (const path of ['/teapot', '/drop', '/old']) {
    const r = await request(`${u.url}${path}`, { headers: BROWSER });
    assert.equal(r.status, 200, path);
    await waitFor(() => u.access.some((l) => l.path === path), 5000, `the access-log line of ${path}`);
    assert.equal(u.access.find((l) => l.path === path)!.waf_action, 'pass', path);
  }
  await waitFor(() => {
    try {
      return readFileSync(audit, 'utf8').trim().split('\n').length >= 3;
    } catch {
      return false;
    }
  }, 5000, 'the audit log lines');
  const records = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(records.map((r) => [r.target, r.action, r.disruptive, r.would_disrupt]), [
    ['/teapot', 'detected', 'pass', 'deny'],
    ['/drop', 'detected', 'pass', 'drop'],
    ['/old', 'detected', 'pass', 'redirect'],
  ]);
});

test('the same rules in nginx + ModSecurity v3 + the CRS: the same status and Location (deny 418, redirect 302 and 301, allow, allow:phase, allow:request, the CRS blocking), except drop (v3 denies with 403 instead)', async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const ms = await startModSecurity({ upstreamPort: up.port, paranoia: 1, audit: 'off', extra: RULES });
  t.after(() => ms.stop());
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], waf: { crs: CRS, paranoia_level: 1, rules: [RULES] } });
  t.after(() => u.close());

  const cases = ['/teapot', '/old?x=1', '/moved', '/phase', '/request', `/trusted${XSS}`, `/other${XSS}`, '/index.html'];
  for (const path of cases) {
    const theirs = await request(`${ms.url}${path}`, { headers: BROWSER });
    const ours = await request(`${u.url}${path}`, { headers: BROWSER });
    assert.equal(ours.status, theirs.status, `${path}: usher ${ours.status}, ModSecurity ${theirs.status}`);
    assert.equal(ours.headers.location, theirs.headers.location, `${path}: Location`);
  }
  assert.equal((await request(`${ms.url}/teapot`, { headers: BROWSER })).status, 418);
  assert.equal((await request(`${ms.url}/moved`, { headers: BROWSER })).status, 301);
  assert.equal((await request(`${ms.url}/phase`, { headers: BROWSER })).status, 429);
  assert.equal((await request(`${ms.url}/request`, { headers: BROWSER })).status, 200);
  assert.equal((await request(`${ms.url}/old?x=1`, { headers: BROWSER })).headers.location, 'http://app.test/new?from=&v=/old');
  // drop: ModSecurity v3 with nginx answers 403; usher closes the connection (what the action says)
  assert.equal((await request(`${ms.url}/drop`, { headers: BROWSER })).status, 403);
  const raw = new RawConnection(u.port);
  raw.write('GET /drop HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n');
  await within(raw.closed, 5000, 'the dropped connection closing');
  assert.equal(raw.received, '');
});
