// Workers (issue #16 pt 3): local rate and concurrency limits, an upstream's circuit breaker and
// rate_limits.connections_per_client hold per usher instance, not once per worker.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { get as httpsGet } from 'node:https';
import { request } from '../helpers/client.js';
import { CERT_FILE, KEY_FILE, h2request, h2session } from '../helpers/h2.js';
import { startUpstream } from '../helpers/upstream.js';
import { LIMIT, start, status, until, yaml } from '../helpers/workers.js';

test('a local rate limit holds per usher instance: the workers share one bucket through the primary', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    few: { rate: 1, per: 1h, burst: 6 }\nroutes: [{ upstream: app, rate_limits: [few] }]\n'));
  const statuses: number[] = [];
  // New connections: the requests alternate between the two workers.
  for (let i = 0; i < 12; i++) statuses.push((await request(`${s.url}/x`)).status);
  assert.deepEqual(statuses, [...Array(6).fill(200), ...Array(6).fill(429)]);
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.requests ?? 0) > 0), 'both workers answered');
});

test('a concurrency limit holds per usher instance: the primary counts the slots of both workers', LIMIT, async (t) => {
  const held: (() => void)[] = [];
  const up = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push(() => res.end('done'));
  });
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  policies:\n    two: { concurrency: 2 }\nroutes: [{ upstream: app, rate_limits: [two] }]\n'));
  // Four at once on new connections (two per worker): a count per worker would let all four through.
  // Released only once the two refusals are in: a request whose slot answer is still on its way
  // from a busy primary would take a released slot, reach the upstream and be held there (a 504).
  let answered = 0;
  const replies = Array.from({ length: 4 }, () =>
    request(`${s.url}/x`).then((r) => {
      answered++;
      return r;
    }),
  );
  const refused = await Promise.race([Promise.all(replies), until('two refusals and two held upstream', async () => (held.length === 2 && answered === 2 ? true : undefined))]);
  assert.equal(refused, true);
  const settled = Promise.all(replies);
  while (held.length > 0) held.shift()!();
  const statuses = (await settled).map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 429, 429]);
  assert.equal(up.requests.length, 2);
  // The slots came back: both workers take requests again.
  const again = Array.from({ length: 2 }, () => request(`${s.url}/y`));
  await until('two more upstream', async () => (held.length === 2 ? true : undefined));
  while (held.length > 0) held.shift()!();
  assert.deepEqual((await Promise.all(again)).map((r) => r.status), [200, 200]);
});

/** Four requests at once on new connections (two per worker): how many reach the upstream, and the statuses. */
async function fourAtOnce(t: { after(fn: () => Promise<void> | void): void }, upstreamYaml: (url: string) => string): Promise<{ held: number; statuses: number[]; reasons: string[]; log: string }> {
  const held: (() => void)[] = [];
  const up = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push(() => res.end('done'));
  });
  t.after(() => up.close());
  const s = await start(t, `listeners: [{ address: 127.0.0.1:0 }]\nadmin: { address: 127.0.0.1:0 }\nupstreams:\n  app:\n${upstreamYaml(JSON.stringify(up.url))}routes: [{ upstream: app }]\n`);
  const replies = Array.from({ length: 4 }, () => request(`${s.url}/x`, { headers: { accept: 'application/json' } }));
  // The refused ones answer at once; the others wait upstream until let go.
  const answered: number[] = [];
  replies.forEach((r, i) => void r.then(() => answered.push(i), () => answered.push(i)));
  await until('every request answered or held upstream', async () => (answered.length + held.length === 4 ? true : undefined));
  const count = held.length;
  while (held.length > 0) held.shift()!();
  const all = await Promise.all(replies);
  return {
    held: count,
    statuses: all.map((r) => r.status).sort(),
    reasons: all.filter((r) => r.status !== 200).map((r) => (JSON.parse(r.body) as { reason: string }).reason),
    log: s.cli.stdout + s.cli.stderr,
  };
}

test("an upstream's circuit_breaker.max_requests holds per usher instance: each of 2 workers takes half", LIMIT, async (t) => {
  // max_requests 2 with a worker's own breaker each would let all four through.
  const r = await fourAtOnce(t, (url) => `    servers: [${url}]\n    circuit_breaker: { max_requests: 2, max_pending: 0 }\n`);
  assert.equal(r.held, 2);
  assert.deepEqual(r.statuses, [200, 200, 503, 503]);
  assert.deepEqual(r.reasons, ['upstream_overloaded', 'upstream_overloaded']);
  assert.doesNotMatch(r.log, /limits smaller than the number of workers/);
});

test("a server's max_requests holds per usher instance too; one below the worker count rounds up to one per worker, with a warning", LIMIT, async (t) => {
  const two = await fourAtOnce(t, (url) => `    servers: [{ url: ${url}, max_requests: 2 }]\n`);
  assert.equal(two.held, 2);
  assert.deepEqual(two.statuses, [200, 200, 503, 503]);
  // 1 over 2 workers: each keeps 1 (0 would refuse everything on one of them), and the primary says so once.
  const one = await fourAtOnce(t, (url) => `    servers: [{ url: ${url}, max_requests: 1 }]\n`);
  assert.equal(one.held, 2);
  assert.deepEqual(one.statuses, [200, 200, 503, 503]);
  const warnings = one.log.match(/limits smaller than the number of workers \(2\).*?upstreams\.app\.servers\[0\]\.max_requests \(1\): each of the 2 workers keeps 1/g) ?? [];
  assert.equal(warnings.length, 1, one.log);
});

/** A new connection that sends a GET: its status line, or 'closed' when usher closed it without a byte. */
function probe(port: number): Promise<{ socket: Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /c HTTP/1.1\r\nHost: x\r\n\r\n'));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\r\n\r\n')) resolve({ socket, answer: buf.slice(0, buf.indexOf('\r\n')) });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (buf === '' ? resolve({ socket, answer: 'closed' }) : reject(new Error(`closed mid-answer: ${buf}`))));
  });
}

test('rate_limits.connections_per_client holds per usher instance: the primary counts the connections of both workers', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  connections_per_client: 3\n  policies: {}\nroutes: [{ upstream: app }]\n'));
  // Six at once, kept open (keep-alive): a count per worker would let all six stay (three each).
  const first = await Promise.all(Array.from({ length: 6 }, () => probe(s.port)));
  t.after(() => first.forEach((c) => c.socket.destroy()));
  const answers = first.map((c) => c.answer).sort();
  assert.deepEqual(answers, ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'closed', 'closed', 'closed']);
  const st = await status(s.admin);
  assert.ok(st.workers.every((w) => (w.connections ?? 0) >= 2), `both workers took connections: ${JSON.stringify(st.workers)}`);
  // Closing the three open ones gives their places back (the workers tell the primary): three new ones stay.
  for (const c of first) c.socket.destroy();
  const again = await until('three new connections admitted', async () => {
    const next = await Promise.all(Array.from({ length: 3 }, () => probe(s.port)));
    if (next.every((c) => c.answer === 'HTTP/1.1 200 OK')) return next;
    for (const c of next) c.socket.destroy();
    return undefined;
  });
  t.after(() => again.forEach((c) => c.socket.destroy()));
  // And a fourth is one too many again.
  assert.equal((await probe(s.port)).answer, 'closed');
});

test('connections_per_client across workers on a TLS listener with HTTP/2: admitted connections handshake and serve, one over the limit is closed', LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const text = `listeners:\n  - { address: 127.0.0.1:0 }\n  - { address: 127.0.0.1:0, tls: { cert: ${JSON.stringify(CERT_FILE)}, key: ${JSON.stringify(KEY_FILE)} }, http2: {} }\nadmin: { address: 127.0.0.1:0 }\nupstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nrate_limits:\n  connections_per_client: 2\n  policies: {}\nroutes: [{ upstream: app }]\n`;
  const s = await start(t, text);
  const url = `https://127.0.0.1:${/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(s.cli.stderr)![1]}`;
  // One after the other: they go to both workers; the ClientHello is sent before the primary answers.
  const sessions = [];
  for (let i = 0; i < 2; i++) {
    const session = await h2session(url);
    t.after(() => session.destroy());
    assert.equal((await h2request(session, { ':path': `/h2-${i}` })).status, 200);
    sessions.push(session);
  }
  await assert.rejects(h2session(url), 'a third connection from the address is closed before its handshake');
  // One closed: an HTTP/1.1 request over TLS takes its place.
  sessions[0]!.close();
  const status = await until('a new TLS connection admitted', () =>
    new Promise<number | undefined>((resolve) => {
      const req = httpsGet(`${url}/h1`, { rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', () => resolve(undefined));
    }),
  );
  assert.equal(status, 200);
});

test("connections_per_client: a worker killed with connections open gives their places back in the primary", LIMIT, async (t) => {
  const up = await startUpstream('app');
  t.after(() => up.close());
  const s = await start(t, yaml(JSON.stringify(up.url), 'rate_limits:\n  connections_per_client: 2\n  policies: {}\nroutes: [{ upstream: app }]\n'));
  // One after the other, both answered and kept open (on one worker or on both: round-robin
  // does not promise which).
  const held: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await probe(s.port);
    t.after(() => c.socket.destroy());
    assert.equal(c.answer, 'HTTP/1.1 200 OK');
    held.push(c.socket);
  }
  // The victim: the worker that accepted the most so far, so it holds 1 or 2 of them (its count
  // of accepted connections is just these).
  const workers = (await status(s.admin)).workers;
  const victim = workers.reduce((a, b) => ((b.connections ?? 0) > (a.connections ?? 0) ? b : a));
  const freed = victim.connections ?? 0;
  assert.ok(freed >= 1 && freed <= 2, JSON.stringify(workers));
  const full = await probe(s.port);
  assert.equal(full.answer, 'closed');
  process.kill(victim.pid!, 'SIGKILL');
  // Its connections close with it; the other worker's stays open.
  await until(`the victim's ${freed} connection(s) to close`, async () => (held.filter((c) => c.destroyed).length === freed ? true : undefined));
  // The dead worker's connections no longer count: as many new ones are admitted (by the survivor or the replacement), the next is not.
  for (let i = 0; i < freed; i++) {
    const admitted = await until(`new connection ${i + 1} of ${freed} admitted`, async () => {
      const c = await probe(s.port);
      if (c.answer === 'HTTP/1.1 200 OK') return c;
      c.socket.destroy();
      return undefined;
    });
    t.after(() => admitted.socket.destroy());
  }
  assert.equal((await probe(s.port)).answer, 'closed');
});
