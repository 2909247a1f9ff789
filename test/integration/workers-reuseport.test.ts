// workers_mechanism (issue #16): with reuse_port (what `auto`, the default, means on Node >= 22.12
// / 23.1 on Linux) every worker binds a listener's port itself with SO_REUSEPORT and the kernel
// spreads the connections; on a Node without it (Node 20) auto and reuse_port fall back to
// node:cluster, whose primary holds the one socket. Every test runs on both: it checks which
// mechanism serves from outside (the listening sockets on the port in /proc/net/tcp: one per
// worker, or the primary's one) and that what works with node:cluster works with it too. The
// other workers-* files use port 0, which node:cluster shares in both cases.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { get as httpsGet } from 'node:https';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { writeFile } from '../helpers/cli.js';
import { CERT_FILE, KEY_FILE } from '../helpers/h2.js';
import { closedPort, startUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/usher.js';
import { killUnderLoad, LIMIT, load, start, status, until } from '../helpers/workers.js';
import { reusePortAvailable, workersMechanism } from '../../src/server/workers/mechanism.js';

const REUSE = reusePortAvailable();
/** The mechanism `auto` and `reuse_port` give on this Node, and the listening sockets a port then has with 2 workers. */
const EXPECTED = REUSE ? { mechanism: 'reuse_port', sockets: 2 } : { mechanism: 'cluster', sockets: 1 };

/** Sockets listening on 127.0.0.1:port, whoever holds them (/proc/net/tcp: local address, state 0A). */
function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === local && f[3] === '0A';
    }).length;
}

// Fixed ports (closedPort: one the OS just gave out and took back): port 0 is always node:cluster's.
const freePort = closedPort;

function configText(ports: readonly number[], upstream: string, extra: string, adminPort = 0): string {
  const listeners = ports.map((p) => `  - { address: 127.0.0.1:${p} }`).join('\n');
  return `listeners:\n${listeners}\nadmin: { address: 127.0.0.1:${adminPort} }\nupstreams:\n  app:\n    servers: [${upstream}]\n${extra}`;
}

interface MechanismStatus {
  workers_mechanism: string;
  workers: { id: number; pid: number | null; state: string; restarts: number; connections: number | null }[];
}

async function mechanismStatus(admin: string): Promise<MechanismStatus> {
  return JSON.parse((await request(`${admin}/status`)).body) as MechanismStatus;
}

/** New connections until the worker `id` has accepted one (the kernel's hash decides where each goes). */
async function reaches(url: string, admin: string, id: number): Promise<void> {
  await until(`worker ${id} to take a connection`, async () => {
    assert.equal((await request(url)).status, 200);
    return ((await mechanismStatus(admin)).workers.find((w) => w.id === id)?.connections ?? 0) > 0 ? true : undefined;
  });
}

test('workers_mechanism: which Node and platform give reuse_port, and what auto, reuse_port and cluster then mean', () => {
  assert.equal(reusePortAvailable('20.18.0', 'linux'), false);
  assert.equal(reusePortAvailable('22.11.0', 'linux'), false);
  assert.equal(reusePortAvailable('22.12.0', 'linux'), true);
  assert.equal(reusePortAvailable('23.0.0', 'linux'), false);
  assert.equal(reusePortAvailable('23.1.0', 'linux'), true);
  assert.equal(reusePortAvailable('24.11.1', 'linux'), true);
  assert.equal(reusePortAvailable('24.11.1', 'darwin'), false, 'SO_REUSEPORT does not balance there');
  assert.deepEqual(workersMechanism('auto', true), { mechanism: 'reuse_port' });
  assert.deepEqual(workersMechanism('auto', false), { mechanism: 'cluster' });
  assert.deepEqual(workersMechanism('cluster', true), { mechanism: 'cluster' });
  assert.deepEqual(workersMechanism('reuse_port', true), { mechanism: 'reuse_port' });
  const fallback = workersMechanism('reuse_port', false);
  assert.equal(fallback.mechanism, 'cluster');
  assert.match(fallback.fallback ?? '', /needs Node >= 22\.12/);
});

test(`workers_mechanism auto (${EXPECTED.mechanism} on Node ${process.versions.node}): the port's sockets, both workers take connections, kill -9: only in-flight requests fail and the replacement binds again`, LIMIT, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    setTimeout(() => res.end('app'), 10);
  });
  t.after(() => up.close());
  const port = await freePort();
  const s = await start(t, configText([port], JSON.stringify(up.url), 'routes: [{ upstream: app }]\n'));
  const before = await mechanismStatus(s.admin);
  assert.equal(before.workers_mechanism, EXPECTED.mechanism);
  assert.match(s.cli.stderr, REUSE ? /listeners shared by SO_REUSEPORT/ : /listeners shared by node:cluster round-robin/);
  assert.equal(listeningSockets(port), EXPECTED.sockets);
  for (const w of before.workers) await reaches(`${s.url}/x`, s.admin, w.id);
  // kill -9 under load, four clients with a new connection per request: a request fails only if
  // it was on the victim (with reuse_port: also a connection waiting in its own accept queue).
  const victim = before.workers[0]!;
  const { replaced, failures } = await killUnderLoad(t, `${s.url}/x`, s.admin, victim);
  assert.equal(replaced.restarts, 1);
  // What may fail is what the victim held when it died: a request in flight per client and,
  // with reuse_port, connections the kernel had queued on its socket while it was going (a
  // client whose request failed may reconnect onto it before it closes: 5 failures for 4
  // clients seen). Bounded, and each a connection cut, never an answer usher got wrong.
  assert.ok(failures.length <= 12, `more failures than the killed worker can have held: ${failures.join('; ')}`);
  for (const f of failures) assert.match(f, /ECONNRESET|socket hang up|ECONNREFUSED|EPIPE|no answer in/);
  // The replacement has its own socket on the port again (reuse_port) and takes connections.
  assert.equal(listeningSockets(port), EXPECTED.sockets);
  await reaches(`${s.url}/x`, s.admin, victim.id);
});

test(`workers_mechanism auto (${EXPECTED.mechanism}): reloads under load fail no request; a listener moved to another port is bound by every worker, the old port closes; a port taken by another socket fails the reload; SIGTERM drains`, LIMIT, async (t) => {
  const held: ((body: string) => void)[] = [];
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    if (req.url === '/slow') held.push((b) => res.end(b));
    else res.end('app');
  });
  t.after(() => up.close());
  const [a, b, c] = [await freePort(), await freePort(), await freePort()];
  // Taken by a socket without SO_REUSEPORT: nobody else may bind it.
  const taken: Server = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => taken.close(() => r())));
  const d = (taken.address() as AddressInfo).port;
  const route = (n: number) => `routes:\n  - { match: { path: /v }, respond: { status: 200, body: "v${n}" } }\n  - { upstream: app }\n`;
  const s = await start(t, configText([a, b], JSON.stringify(up.url), route(0)));
  const adminPort = Number(new URL(s.admin).port);
  assert.equal(listeningSockets(a), EXPECTED.sockets);
  assert.equal(listeningSockets(b), EXPECTED.sockets);
  const v = load(`http://127.0.0.1:${a}/v`, 2, true);
  const fresh = load(`http://127.0.0.1:${a}/x`, 2, false);
  t.after(() => Promise.all([v.stop(), fresh.stop()]).then(() => undefined));
  const reload = async (ports: number[], n: number) => {
    writeFile(s.file, configText(ports, JSON.stringify(up.url), route(n), adminPort));
    s.cli.signal('SIGHUP');
    await until(`reload ${n} in both workers`, async () => {
      const st = await status(s.admin);
      const seen = new Set(st.workers.map((w) => w.config_hash));
      return seen.size === 1 && seen.has(st.config.hash) && v.bodies.has(`v${n}`) ? true : undefined;
    });
  };
  await reload([a, b], 1);
  // b moves to c: every worker binds c, and b closes in every worker.
  await reload([a, c], 2);
  await until('the old port closed in every worker', async () => (listeningSockets(b) === 0 ? true : undefined));
  assert.equal(listeningSockets(c), EXPECTED.sockets);
  await assert.rejects(request(`http://127.0.0.1:${b}/x`), /ECONNREFUSED/);
  for (const w of (await mechanismStatus(s.admin)).workers) await reaches(`http://127.0.0.1:${c}/x`, s.admin, w.id);
  // A port another socket holds: the first worker cannot bind it, so nothing changes anywhere.
  const rejectedBefore = s.cli.messages(/reload failed/).length;
  writeFile(s.file, configText([a, d], JSON.stringify(up.url), route(3), adminPort));
  s.cli.signal('SIGHUP');
  await s.cli.until(() => s.cli.messages(/reload failed/).length > rejectedBefore, 'the reload to fail');
  assert.equal(listeningSockets(d), 1, 'only the socket that held it');
  assert.equal((await request(`http://127.0.0.1:${c}/v`)).body, 'v2');
  await waitFor(() => v.ok() > 20 && fresh.ok() > 20, 60_000, 'load');
  await Promise.all([v.stop(), fresh.stop()]);
  assert.deepEqual([...v.failures, ...fresh.failures], []);
  // SIGTERM: a request in flight completes, every process exits 0.
  const pending = request(`http://127.0.0.1:${a}/slow`);
  await waitFor(() => held.length === 1, 10_000, 'the request upstream');
  s.cli.signal('SIGTERM');
  await s.cli.until(() => s.cli.messages(/worker shutting down/).length === 2, 'both workers draining');
  held[0]!('done');
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'done');
  assert.deepEqual(await s.cli.waitForExit(20_000), { code: 0, signal: null });
  assert.equal(listeningSockets(a), 0);
});

/** A keep-alive HTTP/1.1 request: the status line, or "closed" when usher closed the connection unanswered. */
function probe(port: number): Promise<{ socket: Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /c HTTP/1.1\r\nHost: x\r\n\r\n'));
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      if (buf.includes('\r\n\r\n')) resolve({ socket, answer: buf.slice(0, buf.indexOf('\r\n')) });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (buf === '' ? resolve({ socket, answer: 'closed' }) : reject(new Error(`closed mid-answer: ${buf}`))));
  });
}

for (const setting of ['reuse_port', 'cluster'] as const) {
  const expected = setting === 'cluster' ? { mechanism: 'cluster', sockets: 1 } : EXPECTED;
  test(`workers_mechanism: ${setting} (${expected.mechanism} on Node ${process.versions.node}): a TLS listener, and connections_per_client counted in the primary across the workers`, LIMIT, async (t) => {
    const up = await startUpstream('app');
    t.after(() => up.close());
    const [plain, secure] = [await freePort(), await freePort()];
    const text = `listeners:\n  - { address: 127.0.0.1:${plain} }\n  - { address: 127.0.0.1:${secure}, tls: { cert: ${JSON.stringify(CERT_FILE)}, key: ${JSON.stringify(KEY_FILE)} } }\nadmin: { address: 127.0.0.1:0 }\nupstreams: { app: { servers: [${JSON.stringify(up.url)}] } }\nrate_limits:\n  connections_per_client: 3\n  policies: {}\nroutes: [{ upstream: app }]\nworkers_mechanism: ${setting}\n`;
    const s = await start(t, text);
    assert.equal((await mechanismStatus(s.admin)).workers_mechanism, expected.mechanism);
    assert.equal(listeningSockets(plain), expected.sockets);
    assert.equal(listeningSockets(secure), expected.sockets);
    const fellBack = s.cli.messages(/workers_mechanism: reuse_port needs Node/);
    assert.equal(fellBack.length, setting === 'reuse_port' && !REUSE ? 1 : 0, 'a warning when reuse_port is not available, none otherwise');
    const tlsStatus = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpsGet(`https://127.0.0.1:${secure}/tls`, { rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
    });
    assert.equal(tlsStatus, 200);
    // Six at once, kept open: a count per worker would let all six stay (three each).
    const six = await Promise.all(Array.from({ length: 6 }, () => probe(plain)));
    t.after(() => six.forEach((p) => p.socket.destroy()));
    assert.deepEqual(six.map((p) => p.answer).sort(), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'closed', 'closed', 'closed']);
    for (const p of six) p.socket.destroy();
    // Their places come back: three new ones stay, a fourth is one too many.
    const again = await until('three new connections admitted', async () => {
      const next = await Promise.all(Array.from({ length: 3 }, () => probe(plain)));
      if (next.every((p) => p.answer === 'HTTP/1.1 200 OK')) return next;
      for (const p of next) p.socket.destroy();
      return undefined;
    });
    t.after(() => again.forEach((p) => p.socket.destroy()));
    assert.equal((await probe(plain)).answer, 'closed');
  });
}
