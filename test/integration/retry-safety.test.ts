// Holes in the retry loop found in review, each over real sockets: a try abandoned before it got
// a connection must stay harmless when undici hands it one later.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor } from '../helpers/usher.js';

/** An upstream that sends every response head at once and holds its end until release(). */
async function holding(name: string): Promise<TestUpstream & { release(): void; held: () => number }> {
  const waiting: (() => void)[] = [];
  const up = await startUpstream(name, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    req.on('end', () => waiting.push(() => res.end(name)));
  });
  return Object.assign(up, { release: () => waiting.splice(0).forEach((w) => w()), held: () => waiting.length });
}

test('a try abandoned while waiting for a connection (per_try_timeout) does not tear down the retry’s streamed body when it connects later', async (t) => {
  const a = await holding('a');
  const bodies: string[] = [];
  const b = await startUpstream('b', (req, res) => {
    // The head at once (so b's own try is not timed out), the body once it has all arrived.
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.end(`b got ${body}`);
    });
  });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  // One connection per server: a request to `a` waits in undici's queue while /hold occupies it.
  // The per-try timeout must fire on that wait but never on b's own try, whose head comes at
  // once: 1 s leaves room for a loaded CI machine (150 ms timed out b's try there too).
  const u = await startUsher({
    upstreams: { app: { servers: [a.url, b.url], balance: 'round_robin', pool: { max_connections: 1 }, retry: { per_try_timeout: '1s', backoff: { base: '1ms', max: '2ms' } } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(() => u.close());
  const hold = request(`${u.url}/hold`); // → a, held
  await waitFor(() => a.held() === 1);
  assert.equal((await request(`${u.url}/next`)).status, 200); // → b; the rotation is back at a
  // A streamed (chunked) body: first half now, the rest once the abandoned try got its connection.
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${u.url}/upload`, { method: 'PUT', agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.write('first-');
    void (async () => {
      // The per-try timeout sent the upload to b, which is now reading its body.
      await waitFor(() => b.requests.some((r) => r.url === '/upload'), 20_000, 'retried on b');
      a.release(); // a's connection frees up: undici hands it to the abandoned try
      assert.equal((await hold).status, 200);
      req.end('second');
    })().catch(reject);
  });
  const r = await reply;
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'b got first-second');
  assert.deepEqual(bodies, ['', 'first-second']);
  assert.deepEqual(a.requests.map((x) => x.url), ['/hold'], 'the abandoned try never reached a');
});

test('a refused connection sent nothing: a POST with a streamed body goes to the next server whole, once', async (t) => {
  const port = await closedPort();
  const bodies: string[] = [];
  const good = await startUpstream('good', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.end(`got ${body}`);
    });
  });
  t.after(() => good.close());
  const u = await startUsher({ upstreams: { app: { servers: [`http://127.0.0.1:${port}`, good.url], balance: 'round_robin' } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${u.url}/orders`, { method: 'POST', agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.write('part one, ');
    setImmediate(() => req.end('part two'));
  });
  assert.equal(reply.status, 200, reply.body);
  assert.equal(reply.body, 'got part one, part two');
  assert.deepEqual(bodies, ['part one, part two']);
  await waitFor(() => u.access.length === 1);
  assert.equal(u.access[0]!.attempts, 2, 'the closed port was tried first');
});

test('a POST whose per-try timeout fires after it was sent is not sent again: 504, the other server never sees it', async (t) => {
  const hang = await startUpstream('hang', (req) => req.resume());
  const other = await startUpstream('other');
  t.after(async () => {
    await hang.close();
    await other.close();
  });
  const u = await startUsher({
    upstreams: { app: { servers: [hang.url, other.url], balance: 'round_robin', retry: { per_try_timeout: '100ms', backoff: { base: '1ms', max: '2ms' } } } },
    routes: [{ upstream: 'app' }],
  });
  t.after(() => u.close());
  const r = await request(`${u.url}/pay`, { method: 'POST', body: 'once', headers: { accept: 'application/json' } });
  assert.equal(r.status, 504, r.body);
  assert.equal(JSON.parse(r.body).reason, 'upstream_timeout');
  assert.equal(hang.requests.length, 1);
  assert.equal(other.requests.length, 0, 'never retried');
});

test('per_try_timeout does not count a slow client upload: the clock starts once the body has all arrived', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => res.end(`got ${body}`));
  });
  t.after(() => up.close());
  const u = await startUsher({ upstreams: { app: { servers: [up.url], retry: { per_try_timeout: '100ms' } } }, routes: [{ upstream: 'app' }] });
  t.after(() => u.close());
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${u.url}/upload`, { method: 'PUT', agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.write('slow ');
    void (async () => {
      await waitFor(() => up.requests.length === 1, 5000, 'upload reached the upstream');
      // The scenario, not a synchronisation: the client takes 3 × per_try_timeout to finish.
      await new Promise((r) => setTimeout(r, 300));
      req.end('upload');
    })().catch(reject);
  });
  assert.equal(reply.status, 200, reply.body);
  assert.equal(reply.body, 'got slow upload');
});
