// The TLS edge (forged X-Client-Cert-* stripped, verified identity added, HSTS) guards every way
// into the request path of a listener, not just HTTP/1.1: HTTP/2 over ALPN and WebSocket
// upgrades too. These cross the TLS and the HTTP/2 + WebSocket work, so they live together here.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { certDir } from '../helpers/certs.js';
import { h2request } from '../helpers/h2.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

const FORGED = { 'x-client-cert-subject': 'CN=admin', 'x-client-cert-fingerprint': 'forged' };

function pki() {
  const certs = certDir();
  const ca = certs.ca('server-ca');
  const clientCa = certs.ca('client-ca');
  return {
    certs,
    ca,
    clientCa,
    server: certs.issue('server', { cn: 'site.test', sans: ['DNS:site.test'], ca }),
    alice: certs.issue('alice', { cn: 'alice', ca: clientCa, client: true }),
  };
}

test('HTTP/2 over TLS: forged X-Client-Cert-* are stripped, the verified identity and HSTS are added', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const up = await startUpstream('app');
  const u = await startUsher({
    listeners: [
      {
        address: '127.0.0.1:0',
        http2: {},
        tls: { cert: p.server.certPath, key: p.server.keyPath, hsts: { max_age: 600 }, client_auth: { mode: 'request', ca: p.clientCa.certPath } },
      },
    ],
    upstreams: { app: { servers: [up.url] } },
    routes: [{ upstream: 'app' }],
  });
  t.after(async () => {
    await u.close();
    await up.close();
  });
  const connect = (withCert: boolean) =>
    new Promise<ReturnType<typeof h2connect>>((resolve, reject) => {
      const s = h2connect(`https://127.0.0.1:${u.port}`, {
        servername: 'site.test',
        ca: p.ca.cert,
        ...(withCert ? { cert: p.alice.cert, key: p.alice.key } : {}),
      });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });

  const anon = await connect(false);
  t.after(() => anon.close());
  assert.equal(anon.alpnProtocol, 'h2');
  const r1 = await h2request(anon, { ':path': '/a', ':authority': 'site.test', ...FORGED });
  assert.equal(r1.status, 200);
  assert.equal(r1.headers['strict-transport-security'], 'max-age=600');
  const h1 = up.requests.at(-1)!.headers;
  assert.equal(h1['x-client-cert-subject'], undefined, 'a forged subject never reaches the upstream over HTTP/2');
  assert.equal(h1['x-client-cert-fingerprint'], undefined);

  const alice = await connect(true);
  t.after(() => alice.close());
  const r2 = await h2request(alice, { ':path': '/b', ':authority': 'site.test', ...FORGED });
  assert.equal(r2.status, 200);
  const h2 = up.requests.at(-1)!.headers;
  assert.equal(h2['x-client-cert-subject'], 'CN=alice');
  assert.notEqual(h2['x-client-cert-fingerprint'], 'forged');
  assert.match(String(h2['x-client-cert-fingerprint']), /^[0-9a-f]{64}$/);
});

test('WebSocket upgrade over TLS: forged X-Client-Cert-* are stripped and the verified identity is added', async (t) => {
  const p = pki();
  t.after(() => p.certs.remove());
  const server = createServer((_req, res) => res.end('ws only'));
  const heads: IncomingMessage[] = [];
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    heads.push(req);
    ws.on('message', (data) => ws.send(data));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const u = await startUsher({
    listeners: [{ address: '127.0.0.1:0', tls: { cert: p.server.certPath, key: p.server.keyPath, client_auth: { mode: 'request', ca: p.clientCa.certPath } } }],
    upstreams: { ws: { servers: [upUrl] } },
    routes: [{ upstream: 'ws' }],
  });
  t.after(async () => {
    await u.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const talk = (withCert: boolean) =>
    new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${u.port}/chat`, {
        // The server's own certificate is not what this test is about (it names site.test).
        rejectUnauthorized: false,
        headers: FORGED,
        ...(withCert ? { cert: p.alice.cert, key: p.alice.key } : {}),
      });
      ws.once('open', () => ws.send('ping'));
      ws.once('message', (data) => {
        ws.close();
        resolve(String(data));
      });
      ws.once('error', reject);
    });

  assert.equal(await talk(false), 'ping');
  assert.equal(heads.at(-1)!.headers['x-client-cert-subject'], undefined, 'a forged subject never reaches the upstream through an upgrade');
  assert.equal(heads.at(-1)!.headers['x-client-cert-fingerprint'], undefined);
  assert.equal(await talk(true), 'ping');
  assert.equal(heads.at(-1)!.headers['x-client-cert-subject'], 'CN=alice');
  assert.match(String(heads.at(-1)!.headers['x-client-cert-fingerprint']), /^[0-9a-f]{64}$/);
});
