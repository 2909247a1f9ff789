// A filter that throws, rejects or hands usher something it cannot send: the request gets a 500
// internal_error with its request id, the process log names the filter and phase, and the next
// request on the same connection is served. Test-only filters through UsherOptions.filters.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import type { RouteFilterDefinition } from '../../src/pipeline/registry.js';
import type { Filter, LocalResponse } from '../../src/pipeline/types.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startUsher, waitFor, type TestUsher } from '../helpers/usher.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The request went on a connection an earlier request used. */
  reused: boolean;
}

/** One request on `agent` (keep-alive, one socket): the next one shows whether the connection survived. */
function send(agent: Agent, url: string, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const boom = (where: string) => new Error(`boom in ${where}`);

/** Each scenario: a route of that name whose filter misbehaves in one phase. */
const SCENARIOS: Record<string, { phase: string; filter: Filter }> = {
  'request-throws': { phase: 'request', filter: { name: 'request_thrower', request: () => { throw boom('request'); } } },
  'request-rejects': { phase: 'request', filter: { name: 'request_rejecter', request: () => nextTurn().then(() => Promise.reject(boom('request'))) } },
  'upstream-request-rejects': { phase: 'upstream_request', filter: { name: 'upstream_request_rejecter', upstreamRequest: () => nextTurn().then(() => Promise.reject(boom('upstream_request'))) } },
  'upstream-response-throws': { phase: 'upstream_response', filter: { name: 'upstream_response_thrower', upstreamResponse: () => { throw boom('upstream_response'); } } },
  'response-throws': { phase: 'response', filter: { name: 'response_thrower', response: () => { throw boom('response'); } } },
  'response-rejects': { phase: 'response', filter: { name: 'response_rejecter', response: () => nextTurn().then(() => Promise.reject(boom('response'))) } },
  'body-throws': { phase: 'request_body', filter: { name: 'body_thrower', requestBody: { maxBytes: 100, inspect: () => { throw boom('request_body'); } } } },
  'body-rejects': { phase: 'request_body', filter: { name: 'body_rejecter', requestBody: { maxBytes: 100, inspect: () => nextTurn().then(() => Promise.reject(boom('request_body'))) } } },
  'response-body-throws': { phase: 'response_body', filter: { name: 'response_body_thrower', responseBody: () => { throw boom('response_body'); } } },
  'peer-throws': { phase: 'upstream_peer', filter: { name: 'peer_thrower', upstreamPeer: () => { throw boom('upstream_peer'); } } },
};

/** Local replies usher cannot write as given: a field value with a line break, a status out of range. */
const BAD_REPLIES: Record<string, LocalResponse> = {
  'bad-header': { status: 200, headers: ['x-bad', 'a\r\nx-injected: 1'], body: 'x' },
  'bad-status': { status: 1000, body: 'x' },
};

const FILTERS: RouteFilterDefinition[] = [
  ...Object.entries(SCENARIOS).map(([route, s]): RouteFilterDefinition => ({ name: s.filter.name, create: (rc) => (rc.name === route ? s.filter : undefined) })),
  ...Object.entries(BAD_REPLIES).flatMap(([route, reply]): RouteFilterDefinition[] => [
    { name: 'bad_reply', create: (rc) => (rc.name === route ? { name: 'bad_reply', request: () => reply } : undefined) },
    { name: 'bad_reply_async', create: (rc) => (rc.name === `${route}-async` ? { name: 'bad_reply_async', request: () => nextTurn().then(() => reply) } : undefined) },
  ]),
  // A response filter that adds a field node:http refuses, on a proxied response.
  { name: 'bad_response_header', create: (rc) => (rc.name === 'bad-response-header' ? { name: 'bad_response_header', response: (_c, h) => void h.headers.push('x-bad', 'a\nb') } : undefined) },
];

const ROUTE_NAMES = [...Object.keys(SCENARIOS), ...Object.keys(BAD_REPLIES).flatMap((r) => [r, `${r}-async`]), 'bad-response-header'];

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ up: TestUpstream; u: TestUsher }> {
  const up = await startUpstream('app');
  const routes = [...ROUTE_NAMES.map((name) => ({ name, match: { path: `/${name}` }, upstream: 'app' })), { name: 'ok', upstream: 'app' }];
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes }, { filters: FILTERS });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  return { up, u };
}

/** A 500 internal_error that carries its request id in the header and the body. */
function assertInternalError(r: Reply, what: string): string {
  assert.equal(r.status, 500, `${what}: status (body ${JSON.stringify(r.body)})`);
  assert.match(r.body, /^reason: internal_error$/m, `${what}: reason`);
  const id = r.headers['x-request-id'];
  assert.ok(typeof id === 'string' && id !== '', `${what}: an x-request-id`);
  assert.equal(/^request_id: (\S+)$/m.exec(r.body)?.[1], id, `${what}: the body's request id is the header's`);
  return id;
}

test('a filter that throws or rejects in any phase: 500 internal_error with the request id, logged with the filter, the connection goes on', async (t) => {
  const { u } = await setup(t);
  for (const [route, s] of Object.entries(SCENARIOS)) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const method = s.phase === 'request_body' ? 'POST' : 'GET';
    const failed = await send(agent, `${u.url}/${route}`, method, method === 'POST' ? 'some body' : undefined);
    const id = assertInternalError(failed, route);
    await waitFor(() => u.logs.some((l) => l.request_id === id), 5000, `${route}: the log line`);
    const lines = u.logs.filter((l) => l.request_id === id);
    assert.equal(lines.length, 1, `${route}: one log line (${JSON.stringify(lines)})`);
    assert.equal(lines[0]!.filter, s.filter.name, `${route}: the log names the filter`);
    assert.equal(lines[0]!.phase, s.phase, `${route}: and the phase`);
    assert.match(JSON.stringify(lines[0]!.err), new RegExp(`boom in ${s.phase}`), `${route}: and the error`);
    const next = await send(agent, `${u.url}/fine`);
    assert.equal(next.status, 200, `${route}: the next request is served`);
    assert.equal(next.reused, true, `${route}: on the same connection`);
  }
  await waitFor(() => u.access.length === Object.keys(SCENARIOS).length * 2, 5000, 'access log');
  const failures = u.access.filter((l) => l.status === 500);
  assert.equal(failures.length, Object.keys(SCENARIOS).length);
  assert.ok(
    failures.every((l) => l.reason === 'internal_error'),
    JSON.stringify(failures.map((l) => l.reason)),
  );
});

test('a local reply usher cannot write (a field with CR LF, status 1000): 500 internal_error naming the filter, the process carries on', async (t) => {
  const { up, u } = await setup(t);
  for (const route of Object.keys(BAD_REPLIES).flatMap((r) => [r, `${r}-async`])) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const failed = await send(agent, `${u.url}/${route}`);
    const id = assertInternalError(failed, route);
    assert.equal(failed.headers['x-injected'], undefined, `${route}: nothing was injected`);
    await waitFor(() => u.logs.some((l) => l.request_id === id), 5000, `${route}: the log line`);
    assert.equal(u.logs.find((l) => l.request_id === id)!.filter, route.endsWith('-async') ? 'bad_reply_async' : 'bad_reply', route);
    const next = await send(agent, `${u.url}/fine`);
    assert.equal(next.status, 200, `${route}: the next request is served`);
  }
  assert.equal(up.requests.filter((r) => r.url !== '/fine').length, 0);
});

test('a response filter that adds a field node:http refuses: 500 internal_error (not the upstream blamed with a 502)', async (t) => {
  const { u } = await setup(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const failed = await send(agent, `${u.url}/bad-response-header`);
  const id = assertInternalError(failed, 'bad-response-header');
  await waitFor(() => u.logs.some((l) => l.request_id === id), 5000, 'the log line');
  const line = u.logs.find((l) => l.request_id === id)!;
  assert.ok((line.filters as string[]).includes('bad_response_header'), `the log names the response filters: ${JSON.stringify(line)}`);
  assert.equal(u.logs.filter((l) => l.request_id === id).length, 1, 'one log line');
  const next = await send(agent, `${u.url}/fine`);
  assert.equal(next.status, 200);
  assert.equal(next.reused, true, 'on the same connection');
  await waitFor(() => u.access.length === 2, 5000, 'access log');
  assert.deepEqual(
    u.access.map((l) => [l.status, l.reason]),
    [
      [500, 'internal_error'],
      [200, null],
    ],
  );
});

test("a filter's reply whose Content-Length says otherwise than its body: usher frames it by the body, the connection stays in step", async (t) => {
  const lying: Filter = {
    name: 'lying',
    request: (ctx) => (ctx.target === '/lie' ? { status: 200, headers: ['content-length', '2', 'transfer-encoding', 'chunked'], body: 'hello, world' } : undefined),
  };
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] }, { filters: [{ name: 'lying', create: () => lying }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const r = await send(agent, `${u.url}/lie`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello, world');
  assert.equal(r.headers['content-length'], '12');
  const next = await send(agent, `${u.url}/next`);
  assert.equal(next.status, 200);
  assert.equal(next.body, 'app');
  assert.equal(next.reused, true);
});

test('the upstream resets while an async response hook holds its head: a 502 at once, the late resume changes nothing', async (t) => {
  let release: (() => void) | undefined;
  const calls: string[] = [];
  const held: Filter = {
    name: 'held',
    response: (ctx, head) => {
      calls.push(`${head.local ? 'local' : 'proxied'} ${head.status} ${ctx.target}`);
      if (head.local || ctx.target !== '/cut') return undefined;
      return new Promise<void>((resolve) => (release = resolve));
    },
  };
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    if (req.url !== '/cut') return void res.end('fine');
    // The head, then the connection cut before the body.
    res.writeHead(200, { 'content-length': '100' });
    res.flushHeaders();
    setImmediate(() => res.destroy());
  });
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] }, { filters: [{ name: 'held', create: () => held }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const r = await send(agent, `${u.url}/cut`);
  assert.ok(release !== undefined, 'the hook held the proxied head');
  assert.equal(r.status, 502);
  assert.match(r.body, /reason: upstream_reset/);
  release!();
  await nextTurn();
  const next = await send(agent, `${u.url}/after`);
  assert.equal(next.status, 200);
  assert.equal(next.reused, true);
  assert.deepEqual(calls, ['proxied 200 /cut', 'local 502 /cut', 'proxied 200 /after']);
});

test('an upstream_request filter that leaves a head undici refuses: 500 internal_error naming it, no retry, no server blamed', async (t) => {
  const breaking: Filter = {
    name: 'breaking',
    upstreamRequest: (ctx, head) => {
      if (ctx.target === '/field') head.headers.push('x-bad', 'a\r\nx-injected: 1');
      if (ctx.target === '/target') head.target = 'no-slash';
      if (ctx.target === '/later') return nextTurn().then(() => void head.headers.push('x-bad', 'a\nb'));
      return undefined;
    },
  };
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const u = await startUsher(
    // One connect failure ejects a server: a filter's bad head must not count as one.
    { upstreams: { app: { servers: [a.url, b.url], outlier_detection: { consecutive_connect_failures: 1, consecutive_5xx: 1 } } }, routes: [{ upstream: 'app' }] },
    { filters: [{ name: 'breaking', create: () => breaking }] },
  );
  t.after(async () => {
    await u.close();
    await a.close();
    await b.close();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (const path of ['/field', '/target', '/later']) {
    const r = await send(agent, `${u.url}${path}`);
    const id = assertInternalError(r, path);
    await waitFor(() => u.logs.some((l) => l.request_id === id), 5000, `${path}: the log line`);
    const line = u.logs.find((l) => l.request_id === id)!;
    assert.deepEqual(line.filters, ['breaking'], `${path}: the log names the upstream_request filters (${JSON.stringify(line)})`);
    const next = await send(agent, `${u.url}/fine`);
    assert.equal(next.status, 200, `${path}: the next request is served`);
  }
  assert.deepEqual(a.requests.map((r) => r.url).concat(b.requests.map((r) => r.url)), ['/fine', '/fine', '/fine'], 'nothing broken went upstream');
  await waitFor(() => u.access.length === 6, 5000, 'access log');
  assert.deepEqual(
    u.access.filter((l) => l.status === 500).map((l) => [l.reason, l.attempts]),
    [
      ['internal_error', 1],
      ['internal_error', 1],
      ['internal_error', 1],
    ],
    'not retried',
  );
  assert.equal(u.logs.filter((l) => l.msg === 'upstream server unhealthy').length, 0, 'no server was ejected for a filter bug');
});

test('a filter that leaves a non-string field in the upstream head (a JavaScript filter): 500 with the request id, the process carries on', async (t) => {
  const untyped = {
    name: 'untyped',
    upstreamRequest: (ctx: { target: string }, head: { headers: unknown[] }) => {
      if (ctx.target === '/now') head.headers.push(42, 'x');
      if (ctx.target === '/later') return nextTurn().then(() => void head.headers.push(42, 'x'));
      return undefined;
    },
  } as unknown as Filter;
  const up = await startUpstream('app');
  const u = await startUsher({ upstreams: { app: { servers: [up.url] } }, routes: [{ upstream: 'app' }] }, { filters: [{ name: 'untyped', create: () => untyped }] });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (const path of ['/now', '/later']) {
    assertInternalError(await send(agent, `${u.url}${path}`), path);
    assert.equal((await send(agent, `${u.url}/fine`)).status, 200, `${path}: the next request is served`);
  }
  assert.deepEqual(
    up.requests.map((r) => r.url),
    ['/fine', '/fine'],
  );
});
