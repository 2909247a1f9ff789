// The WAF's response phases (issue 14) over real sockets, with the installed CRS 3.3.4 in front
// of an upstream the test starts: with response_body_access, an SQL error message in the body
// (RESPONSE-951, "You have an error in your SQL syntax" → 951230) makes the CRS's 959100 deny
// in phase 4, and the client gets 403 waf_blocked with its request id instead of any byte of
// the upstream's answer (access and audit logs carry the outbound score and the rules); with it
// off the same answer passes; a benign body passes byte for byte (chunked or with a length); a
// body over the limit passes with ProcessPartial (the leak past the limit unseen) and is refused
// with reject; a type outside response_body_mime_types streams uninspected; detection_only
// passes and logs; a phase-3 rule on the head blocks before the upstream's body has ended; and
// nginx + ModSecurity v3 + the same CRS judge the same upstream answers as usher does.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { h2request, h2session } from '../helpers/h2.js';
import { startModSecurity } from '../helpers/modsecurity-crs.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

const CRS = '/usr/share/modsecurity-crs';
const BROWSER = { host: 'app.test', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', accept: 'text/html,application/xhtml+xml', 'accept-language': 'en' };
const LEAK = "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>";
// every byte value, in an HTML page: what passes must arrive as sent
const BENIGN = Buffer.concat([Buffer.from('<html><body><p>hello</p>'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('</body></html>')]);
const PAD = 'x'.repeat(3000);

function upstream(): Promise<TestUpstream> {
  return startUpstream('app', (req, res) => {
    req.resume();
    const path = req.url!.split('?')[0];
    switch (path) {
      case '/leak':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.write(LEAK.slice(0, 40));
        res.end(LEAK.slice(40));
        return;
      case '/leak-json':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: LEAK }));
        return;
      case '/benign':
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(BENIGN.length) });
        res.end(BENIGN);
        return;
      case '/benign-chunked':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write(BENIGN.subarray(0, 100));
        res.end(BENIGN.subarray(100));
        return;
      case '/late-leak':
        // the leak past the 2 KiB the WAF reads
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<html>${PAD}${LEAK}</html>`);
        return;
      case '/dir':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><head><title>Index of /files</title></head><body><h1>Index of /files</h1><a href="a.sql">a.sql</a></body></html>');
        return;
      case '/php-error':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end("<br /><b>Warning</b>:  include(config.php): failed to open stream in <b>/var/www/index.php</b> on line <b>3</b><br />");
        return;
      case '/php':
        // the head, a first chunk, and a body that does not end: phase 3 must not wait for it
        res.writeHead(200, { 'content-type': 'text/html', 'x-generator': 'PHP/5.6.40' });
        res.write('<html>');
        return;
      default:
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>ok</html>');
    }
  });
}

async function setup(t: { after(fn: () => Promise<void>): void }, waf: Record<string, unknown>): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await upstream();
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], waf: { crs: CRS, ...waf } });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = BROWSER): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function accessLine(u: TestUsher, requestId: string): Promise<Record<string, unknown>> {
  await waitFor(() => u.access.some((l) => l.request_id === requestId), 10_000, `the access-log line of ${requestId}`);
  return u.access.find((l) => l.request_id === requestId)!;
}

function assertBlocked(r: Got, what: string): string {
  assert.equal(r.status, 403, what);
  const body = JSON.parse(r.body.toString()) as { reason: string; request_id: string };
  assert.equal(body.reason, 'waf_blocked', what);
  assert.equal(body.request_id, r.headers['x-request-id'], what);
  assert.ok(!r.body.toString().includes('SQL syntax'), `${what}: no byte of the upstream's answer`);
  return body.request_id;
}

test('response_body_access: a MySQL error in the body is blocked with 403 waf_blocked (951230, 959100), logged and audited with the outbound score; a benign body passes byte for byte', async (t) => {
  const audit = join(tempDir(t), 'audit.jsonl');
  const { up, u } = await setup(t, { response_body_access: true, audit_log: audit });
  const json = { ...BROWSER, accept: 'application/json' };
  const id = assertBlocked(await get(`${u.url}/leak`, json), 'the leak');
  const line = await accessLine(u, id);
  assert.equal(line.status, 403);
  assert.equal(line.reason, 'waf_blocked');
  assert.ok((line.waf_rules as number[]).includes(951230), JSON.stringify(line.waf_rules));
  assert.ok((line.waf_rules as number[]).includes(959100), JSON.stringify(line.waf_rules));
  assert.equal(line.waf_outbound_score, 5);
  assert.equal(line.waf_score, 0);
  assert.equal(line.waf_action, 'deny');
  assert.equal(up.requests.length, 1, 'the request itself went upstream');

  for (const path of ['/benign', '/benign-chunked']) {
    const ok = await get(`${u.url}${path}`);
    assert.equal(ok.status, 200, path);
    assert.ok(ok.body.equals(BENIGN), `${path}: byte for byte`);
    if (path === '/benign') assert.equal(ok.headers['content-length'], String(BENIGN.length));
    const l = await accessLine(u, ok.headers['x-request-id'] as string);
    assert.deepEqual(l.waf_rules, []);
    assert.equal(l.waf_outbound_score, 0);
  }
  const other = await get(`${u.url}/leak-json`);
  assert.equal(other.status, 200, 'application/json is not in response_body_mime_types: not read, not judged');
  assert.match(other.body.toString(), /SQL syntax/);

  await waitFor(() => {
    try {
      return readFileSync(audit, 'utf8').trim().split('\n').length >= 1;
    } catch {
      return false;
    }
  }, 10_000, 'the audit line');
  const records = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.length, 1, 'only the leak is audited');
  const rec = records[0]!;
  assert.equal(rec.request_id, id);
  assert.equal(rec.action, 'blocked');
  assert.equal(rec.status, 403);
  assert.equal(rec.interrupted_by, 959100);
  assert.equal(rec.outbound_anomaly_score, 5);
  assert.equal(rec.anomaly_score, 0);
  const rules = rec.rules as Array<{ id: number; data: string }>;
  assert.match(rules.find((r) => r.id === 951230)!.data, /SQL syntax/);
});

test('response_body_access off (the default): the same leak passes, nothing is held', async (t) => {
  const { u } = await setup(t, {});
  const r = await get(`${u.url}/leak`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), LEAK);
  const line = await accessLine(u, r.headers['x-request-id'] as string);
  assert.equal(line.waf_outbound_score, undefined, 'no response phase ran');
});

test('detection_only: the leak passes intact and is logged with its rules and outbound score', async (t) => {
  const { u } = await setup(t, { response_body_access: true, mode: 'detection_only' });
  const r = await get(`${u.url}/leak`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), LEAK);
  const line = await accessLine(u, r.headers['x-request-id'] as string);
  assert.ok((line.waf_rules as number[]).includes(951230));
  assert.ok((line.waf_rules as number[]).includes(959100));
  assert.equal(line.waf_outbound_score, 5);
  assert.equal(line.waf_action, 'pass');
});

test('a body over response_body_limit: process_partial reads its first bytes and passes it whole; reject answers 403 waf_blocked', async (t) => {
  const partial = await setup(t, { response_body_access: true, response_body_limit: '2kb' });
  const late = `<html>${PAD}${LEAK}</html>`;
  const r = await get(`${partial.u.url}/late-leak`);
  assert.equal(r.status, 200, 'the leak is past the part read');
  assert.equal(r.body.toString(), late, 'the whole body, held part and rest');
  assertBlocked(await get(`${partial.u.url}/leak`, { ...BROWSER, accept: 'application/json' }), 'a leak within the limit');
  const reject = await setup(t, { response_body_access: true, response_body_limit: '2kb', response_body_limit_action: 'reject' });
  assertBlocked(await get(`${reject.u.url}/late-leak`, { ...BROWSER, accept: 'application/json' }), 'over the limit, reject');
  const small = await get(`${reject.u.url}/benign`);
  assert.equal(small.status, 200);
  assert.ok(small.body.equals(BENIGN));
});

test('phase 3: a rule on the response head blocks before the upstream body has ended', async (t) => {
  const { u } = await setup(t, {
    response_body_access: true,
    rules: ['SecRule RESPONSE_HEADERS:X-Generator "@rx ^PHP/5\\." "id:100300,phase:3,deny,log,msg:\'outdated PHP\'"', 'SecRule REQUEST_FILENAME "@streq /leak" "id:100301,phase:1,nolog,allow"'],
  });
  const allowed = await get(`${u.url}/leak`);
  assert.equal(allowed.status, 200, 'an allow in phase 1 ends evaluation: phases 3-4 do not run');
  assert.equal(allowed.body.toString(), LEAK);
  const id = assertBlocked(await get(`${u.url}/php`, { ...BROWSER, accept: 'application/json' }), 'phase 3');
  const line = await accessLine(u, id);
  assert.ok((line.waf_rules as number[]).includes(100300));
  assert.equal(line.waf_outbound_score, 0, 'blocked in phase 3: 959060 (phase 4) never summed');
  const ok = await get(`${u.url}/other`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '<html>ok</html>');
});

test('the same upstream answers through nginx + ModSecurity v3 + the CRS (SecResponseBodyAccess On) and usher: the same verdicts and 95x rule ids (ModSecurity, its head already sent, closes the connection where usher answers 403)', async (t) => {
  const up = await upstream();
  t.after(() => up.close());
  const types = ['text/plain', 'text/html', 'text/xml', 'application/json'];
  const ms = await startModSecurity({ upstreamPort: up.port, paranoia: 1, responseBodyAccess: true });
  t.after(() => ms.stop());
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }], waf: { crs: CRS, response_body_access: true, response_body_mime_types: types } });
  t.after(() => u.close());
  ms.readAudit();
  // path, the verdict both give, a rule both match
  const cases: Array<[string, number, number | undefined]> = [
    ['/leak', 403, 951230],
    ['/leak-json', 403, 951230],
    ['/late-leak', 403, 951230],
    ['/dir', 403, 950130],
    ['/php-error', 403, 953100],
    ['/benign', 200, undefined],
    ['/benign-chunked', 200, undefined],
    ['/other', 200, undefined],
  ];
  for (const [path, status, rule] of cases) {
    // nginx's connector has sent the head when phase 4 denies ("header already sent" in its
    // error log): it closes the connection without an answer; usher answers 403 waf_blocked
    const theirs = await get(`${ms.url}${path}`).catch((err: NodeJS.ErrnoException) => ({ status: 0, headers: {}, body: Buffer.from(String(err.code)) }));
    const ours = await get(`${u.url}${path}`);
    assert.equal(ours.status, status, `${path}: usher ${ours.status}`);
    if (status === 200) {
      assert.equal(theirs.status, 200, `${path}: ModSecurity ${theirs.status}`);
      assert.ok(ours.body.equals(theirs.body), `${path}: the same bytes`);
    } else {
      assert.equal(theirs.status, 0, `${path}: ModSecurity closes the connection (${theirs.status})`);
      assert.equal(theirs.body.toString(), 'ECONNRESET', `${path}: no byte of the upstream's answer`);
    }
    const line = await accessLine(u, ours.headers['x-request-id'] as string);
    const usherRules = (line.waf_rules as number[]).filter((id) => id >= 950000 && id < 960000).map(String).sort();
    let theirRules: string[] = [];
    await waitFor(() => {
      const recs = ms.readAudit();
      if (recs.length > 0) {
        theirRules = recs.flatMap((r) => r.messages.map((m) => m.ruleId)).filter((id) => id.startsWith('95')).sort();
        assert.equal(recs[0]!.status, status, `${path}: ModSecurity's audited status`);
      }
      return recs.length > 0 || status === 200;
    }, 10_000, `the ModSecurity audit record of ${path}`);
    assert.deepEqual(usherRules, theirRules, `${path}: the 95x rules matched`);
    if (rule !== undefined) assert.ok(usherRules.includes(String(rule)), `${path}: ${rule} in ${usherRules.join(',')}`);
  }
});

test('HTTP/2: the leak is answered 403 waf_blocked on its stream (RESPONSE_PROTOCOL HTTP/2.0), a benign page passes byte for byte, the session goes on', async (t) => {
  const up = await upstream();
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', http2: {} }],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
    waf: { crs: CRS, response_body_access: true, rules: ['SecRule RESPONSE_PROTOCOL "@streq HTTP/2.0" "id:100500,phase:3,pass,log,msg:\'h2\'"'] },
  });
  const session = await h2session(u.url);
  t.after(async () => {
    session.close();
    await u.close();
    await up.close();
  });
  const h = { ':authority': 'app.test', 'user-agent': BROWSER['user-agent'], accept: 'application/json' };
  const bad = await h2request(session, { ...h, ':path': '/leak' });
  assert.equal(bad.status, 403);
  const body = JSON.parse(bad.body.toString()) as { reason: string; request_id: string };
  assert.equal(body.reason, 'waf_blocked');
  const line = await accessLine(u, body.request_id);
  assert.ok((line.waf_rules as number[]).includes(959100));
  assert.ok((line.waf_rules as number[]).includes(100500), 'RESPONSE_PROTOCOL is HTTP/2.0');
  const ok = await h2request(session, { ...h, ':path': '/benign' });
  assert.equal(ok.status, 200);
  assert.ok(ok.body.equals(BENIGN));
});
