// A reload to 20k routes while serving (issue #11: it was parsed and checked on the serving
// thread, and one request waited 6.4 s). Here: requests keep being answered while the new config
// is built, and then it takes effect. How long they wait is measured by `npm run bench:micro`
// (bench/micro/reload.js), not asserted here.
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { serve, tempDir, writeFile } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { startUpstream } from '../helpers/upstream.js';

const ROUTES = 20_000;

function bigConfig(upstream: string): string {
  const lines = ['listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    servers: [' + JSON.stringify(upstream) + ']\nroutes:\n'];
  for (let i = 0; i < ROUTES / 2; i++) {
    lines.push(`  - { match: { path: /svc${i}/api, method: GET, headers: { x-t: { exact: "v${i}" } } }, upstream: app }\n`);
    lines.push(`  - { match: { host: h${i}.example.test, path: /p${i} }, respond: { status: 200, body: "r${i}" } }\n`);
  }
  lines.push('  - { match: { path: /new }, respond: { status: 200, body: "new route" } }\n  - { upstream: app }\n');
  return lines.join('');
}

test(`a reload to ${ROUTES} routes: requests sent meanwhile are all answered, then the new routes answer`, { timeout: 120_000 }, async (t) => {
  const a = await startUpstream('a');
  t.after(() => a.close());
  const dir = tempDir(t);
  const file = writeFile(join(dir, 'usher.yaml'), `listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    servers: [${JSON.stringify(a.url)}]\nroutes:\n  - { upstream: app }\n`);
  const { cli, url } = await serve(t, ['--config', file]);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  writeFile(file, bigConfig(a.url));
  const reloaded = () => cli.messages(/^config reloaded/).length > 0;
  const statuses: number[] = [];
  let duringReload = 0;
  while (!reloaded()) {
    const r = await request(`${url}/new`, { agent });
    statuses.push(r.status);
    if (r.body === 'a' && !reloaded()) duringReload++;
    if (cli.exit !== undefined) assert.fail(`usher exited\n${cli.output()}`);
  }
  assert.deepEqual([...new Set(statuses)], [200], 'every request during the reload was answered');
  assert.ok(duringReload > 0, 'requests were answered by the old config while the new one was built');
  assert.deepEqual(cli.messages(/^reload rejected/), []);

  assert.equal((await request(`${url}/new`, { agent })).body, 'new route');
  assert.equal((await request(`${url}/p1234`, { agent, headers: { host: 'h1234.example.test' } })).body, 'r1234');
  assert.equal((await request(`${url}/svc77/api`, { agent, headers: { 'x-t': 'v77' } })).body, 'a');
  assert.equal((await request(`${url}/elsewhere`, { agent })).body, 'a');
});
