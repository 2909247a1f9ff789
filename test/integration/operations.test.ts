// Operating the real CLI process: reload on SIGHUP and on file change, rejected reloads, reload
// under load and across in-flight requests, graceful shutdown and its grace period.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { Agent, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { serve, tempDir, writeFile } from '../helpers/cli.js';
import { request, type Reply } from '../helpers/client.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/usher.js';

/** Backstop for every test: a request that never settles must not hang the run. */
const LIMIT = { timeout: 120_000 };

/** A config file: one listener on port 0, the given upstreams and routes (YAML flow mappings). */
function config(upstreams: Record<string, string[]>, routes: string[], extra = ''): string {
  const ups = Object.entries(upstreams)
    .map(([name, servers]) => `  ${name}:\n    servers: [${servers.map((s) => JSON.stringify(s)).join(', ')}]\n`)
    .join('');
  return `listeners:\n  - address: 127.0.0.1:0\nupstreams:\n${ups}routes:\n${routes.map((r) => `  - ${r}\n`).join('')}${extra}`;
}

const NEW_ROUTE = '{ match: { path: /new }, respond: { status: 200, body: "new route\\n" } }';

/** An upstream that holds every request until the test answers it. */
async function startSlowUpstream(t: { after(fn: () => Promise<void>): void }): Promise<TestUpstream & { held: ServerResponse[] }> {
  const held: ServerResponse[] = [];
  const up = await startUpstream('slow', (req, res) => {
    req.resume();
    held.push(res);
  });
  t.after(() => up.close());
  return Object.assign(up, { held });
}

async function body(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await request(url, { headers });
  assert.equal(r.status, 200, `${url}: ${r.status} ${r.body}`);
  return r.body;
}

/** Polls `url` until it answers `want` (bounded). */
async function until200(url: string, want: string, what: string): Promise<void> {
  let last = '';
  const start = Date.now();
  while ((last = await body(url)) !== want) {
    if (Date.now() - start > 10_000) throw new Error(`timed out waiting for ${what}: ${url} still answers ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a new connection and asks for /ping: did usher answer, refuse, or close with nothing? */
function probe(port: number): Promise<'answered' | 'refused' | 'nothing'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => finish('nothing'), 2_000);
    let got = false;
    const finish = (r: 'answered' | 'refused' | 'nothing') => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('data', () => {
      got = true;
      finish('answered');
    });
    socket.on('error', () => finish(got ? 'answered' : 'refused'));
    socket.on('close', () => finish(got ? 'answered' : 'nothing'));
    socket.on('connect', () => socket.write('GET /ping HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n'));
  });
}

test('reload on SIGHUP: a new route answers', LIMIT, async (t) => {
  const a = await startUpstream('a');
  t.after(() => a.close());
  // The config path is a symlink into a subdirectory the watcher does not see, so editing the
  // target can only be picked up by the signal, not by the file watcher.
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  const target = writeFile(join(dir, 'real', 'usher.yaml'), config({ app: [a.url] }, ['{ upstream: app }']));
  const file = join(dir, 'usher.yaml');
  symlinkSync(target, file);
  const { cli, url } = await serve(t, ['--config', file]);
  assert.equal(await body(`${url}/new`), 'a', 'before the reload /new goes to the catch-all');

  writeFile(target, config({ app: [a.url] }, [NEW_ROUTE, '{ upstream: app }']));
  cli.signal('SIGHUP');
  await cli.until(() => cli.messages(/^config reloaded/).length > 0, 'the "config reloaded" log line');
  assert.equal(await body(`${url}/new`), 'new route\n');
  assert.equal(await body(`${url}/other`), 'a');
});

test('reload on file change: saving in place and replacing by rename both reload', LIMIT, async (t) => {
  const a = await startUpstream('a');
  t.after(() => a.close());
  const dir = tempDir(t);
  const file = writeFile(join(dir, 'usher.yaml'), config({ app: [a.url] }, ['{ upstream: app }']));
  const { url } = await serve(t, ['--config', file]);
  assert.equal(await body(`${url}/new`), 'a');

  writeFile(file, config({ app: [a.url] }, [NEW_ROUTE, '{ upstream: app }']));
  await until200(`${url}/new`, 'new route\n', 'the watcher to reload a file saved in place');

  // Editors save by writing a temp file and renaming it over the original.
  writeFile(join(dir, '.usher.yaml.tmp'), config({ app: [a.url] }, ['{ match: { path: /new }, respond: { body: "renamed\\n" } }', '{ upstream: app }']));
  renameSync(join(dir, '.usher.yaml.tmp'), file);
  await until200(`${url}/new`, 'renamed\n', 'the watcher to reload a file replaced by rename');
});

test('an invalid new config is rejected with an error log; the old config keeps serving', LIMIT, async (t) => {
  const a = await startUpstream('a');
  t.after(() => a.close());
  const file = writeFile(join(tempDir(t), 'usher.yaml'), config({ app: [a.url] }, ['{ upstream: app }']));
  const { cli, url } = await serve(t, ['--config', file]);

  writeFile(file, config({ app: [a.url] }, [NEW_ROUTE, '{ upstream: ap }']));
  cli.signal('SIGHUP');
  const [rejected] = await cli.until(() => {
    const m = cli.messages(/reload rejected/);
    return m.length > 0 ? m : undefined;
  }, 'a "reload rejected" log line');
  assert.equal(rejected!.level, 50, 'logged as an error');
  assert.ok(Array.isArray(rejected!.errors), JSON.stringify(rejected));
  assert.match((rejected!.errors as string[]).join('\n'), /usher\.yaml:\d+:\d+: error: routes\[1\]\.upstream: no upstream named "ap"/);
  assert.equal(cli.messages(/^config reloaded/).length, 0);
  assert.equal(await body(`${url}/new`), 'a', 'the old routes still answer');
  assert.equal(await body(`${url}/`), 'a');

  // Fixing the file recovers.
  writeFile(file, config({ app: [a.url] }, [NEW_ROUTE, '{ upstream: app }']));
  cli.signal('SIGHUP');
  await until200(`${url}/new`, 'new route\n', 'the fixed config to load');
});

test('reload under load: no failed request, every answer from one of the two configs', LIMIT, async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  // The two configs use different upstreams, so every reload also retires a connection pool.
  const configs = { a: config({ app: [a.url] }, ['{ upstream: app }']), b: config({ other: [b.url] }, ['{ upstream: other }']) };
  const file = writeFile(join(tempDir(t), 'usher.yaml'), configs.a);
  const { cli, url } = await serve(t, ['--config', file]);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());

  const MIN_REQUESTS = 500;
  const MAX_REQUESTS = 50_000;
  let sent = 0;
  let reloadsDone = false;
  let last = '';
  const seen = new Map<string, number>();
  const failures: string[] = [];
  const worker = async () => {
    while ((sent < MIN_REQUESTS || !reloadsDone) && sent < MAX_REQUESTS && failures.length < 10) {
      sent++;
      let r: Reply;
      try {
        r = await request(`${url}/load`, { agent });
      } catch (err) {
        failures.push(`request ${sent}: ${(err as Error).message}`);
        continue;
      }
      if (r.status !== 200) failures.push(`request ${sent}: ${r.status} ${r.body}`);
      last = r.body;
      seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);

  const reloads = (async () => {
    try {
      for (let i = 1; i <= 8; i++) {
        const want = i % 2 === 1 ? 'b' : 'a';
        writeFile(file, configs[want]);
        // Alternate the two triggers: a signal, then the file watcher alone.
        if (i % 2 === 1) cli.signal('SIGHUP');
        await waitFor(() => last === want || failures.length > 0 || sent >= MAX_REQUESTS, 30_000, `reload ${i} (to config ${want})`);
      }
    } finally {
      reloadsDone = true;
    }
  })();
  await Promise.all([load, reloads]);

  assert.deepEqual(failures, [], 'no request failed during the reloads');
  assert.ok(sent >= MIN_REQUESTS, `${sent} requests`);
  assert.deepEqual([...seen.keys()].sort(), ['a', 'b'], `answers: ${JSON.stringify([...seen])}`);
  // (`last` may be an older answer that finished late; ask afresh.)
  assert.equal(await body(`${url}/load`), 'a', 'the last config written is the one serving');
  assert.equal(cli.messages(/reload (rejected|failed)/).length, 0, cli.output());
});

test('a long request in flight across a reload completes', LIMIT, async (t) => {
  const slow = await startSlowUpstream(t);
  const b = await startUpstream('b');
  t.after(() => b.close());
  const file = writeFile(join(tempDir(t), 'usher.yaml'), config({ app: [slow.url] }, ['{ upstream: app }']));
  const { cli, url } = await serve(t, ['--config', file]);

  const inflight = request(`${url}/long`);
  await waitFor(() => slow.held.length === 1, 10_000, 'the slow upstream to receive the request');

  // The new config drops the slow upstream entirely: its pool is retired while the request runs.
  writeFile(file, config({ app: [b.url] }, ['{ upstream: app }']));
  cli.signal('SIGHUP');
  // Wait for the swap before asking: a request sent earlier would be held by the slow upstream.
  await cli.until(() => cli.messages(/^config reloaded/).length > 0, 'the "config reloaded" log line');
  assert.equal(await body(`${url}/after`), 'b', 'new requests use the new config');

  slow.held[0]!.writeHead(200, { 'content-type': 'text/plain' });
  slow.held[0]!.end('finished on the old config');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'finished on the old config');
});

test('graceful shutdown: SIGTERM stops accepting, finishes the request in flight, exits 0', LIMIT, async (t) => {
  const slow = await startSlowUpstream(t);
  const file = writeFile(
    join(tempDir(t), 'usher.yaml'),
    config({ app: [slow.url] }, ['{ match: { path: /ping }, respond: { body: "pong" } }', '{ upstream: app }']),
  );
  const { cli, url, port } = await serve(t, ['--config', file]);
  assert.equal(await probe(port), 'answered', 'the probe works while serving');

  const inflight = request(`${url}/slow`);
  await waitFor(() => slow.held.length === 1, 10_000, 'the slow upstream to receive the request');
  cli.signal('SIGTERM');
  await cli.until(() => cli.messages(/^shutting down/).length > 0, 'the "shutting down" log line');

  let outcome: string = 'answered';
  const start = Date.now();
  while ((outcome = await probe(port)) === 'answered' && Date.now() - start < 5_000) await new Promise((r) => setTimeout(r, 10));
  assert.notEqual(outcome, 'answered', 'a new connection is refused (or gets nothing) while draining');
  assert.equal(cli.exit, undefined, 'still running while a request is in flight');

  slow.held[0]!.writeHead(200, { 'content-type': 'text/plain' });
  slow.held[0]!.end('done');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'done');
  const exit = await cli.waitForExit();
  assert.deepEqual(exit, { code: 0, signal: null }, cli.output());
});

test('graceful shutdown: when the grace period runs out the stuck request is cut and usher exits', LIMIT, async (t) => {
  const slow = await startSlowUpstream(t);
  const file = writeFile(join(tempDir(t), 'usher.yaml'), config({ app: [slow.url] }, ['{ upstream: app }'], 'timeouts: { graceful_shutdown: 300ms }\n'));
  const { cli, url } = await serve(t, ['--config', file]);

  // Settled at once into a value, so the expected rejection is never unhandled while we wait.
  const inflight = request(`${url}/stuck`).then(
    (r) => `status ${r.status}`,
    (err: Error) => err.message,
  );
  await waitFor(() => slow.held.length === 1, 10_000, 'the slow upstream to receive the request');
  cli.signal('SIGTERM');
  // Far below the default grace period (10s): only the configured 300ms can end it this soon.
  const exit = await cli.waitForExit(8_000);
  assert.deepEqual(exit, { code: 0, signal: null }, cli.output());
  assert.match(await inflight, /socket hang up|ECONNRESET/, 'the stuck request is cut');
  assert.equal(cli.messages(/grace period over/).length, 1, cli.output());
});

test('SIGINT also shuts down gracefully (the built-in demo, exit 0)', LIMIT, async (t) => {
  const { cli, url } = await serve(t, ['--listen', '127.0.0.1:0']);
  assert.match(await body(`${url}/`), /^Hello from demo-1!/);
  cli.signal('SIGINT');
  const exit = await cli.waitForExit();
  assert.deepEqual(exit, { code: 0, signal: null }, cli.output());
  assert.equal(cli.messages(/^shutting down/)[0]?.signal, 'SIGINT');
});
