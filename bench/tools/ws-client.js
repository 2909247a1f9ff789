// WebSocket load client: N connections, each sends a message and waits for its echo, again and
// again, for a fixed duration. Prints one JSON line: { requests, durationS, rps, p50Ms, p99Ms,
// errors, errorDetail } where a "request" is one completed round trip.
// Usage: node bench/tools/ws-client.js --url ws://127.0.0.1:PORT/ --connections 50 --duration 4
//        [--size 32] [--check]   (--check: one round trip on one connection, exit 1 with a reason)
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { percentile } from '../lib/stats.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '4' },
    size: { type: 'string', default: '32' },
    check: { type: 'boolean', default: false },
  },
});
const connections = values.check ? 1 : Number(values.connections);
const durationMs = values.check ? 0 : Number(values.duration) * 1000;
const payload = 'x'.repeat(Number(values.size));
const OPEN_TIMEOUT_MS = 5000;
const ECHO_TIMEOUT_MS = 5000;

// Hard bound whatever happens (a proxy that swallows upgrades must not hang the run).
setTimeout(() => finish('run did not finish in time'), durationMs + OPEN_TIMEOUT_MS + ECHO_TIMEOUT_MS + 2000).unref();

const latenciesMs = [];
let errors = 0;
const errorMessages = new Set();
let endAt = 0;
let startedAt = 0;
const sockets = [];

function open() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(values.url, { handshakeTimeout: OPEN_TIMEOUT_MS, perMessageDeflate: false });
    sockets.push(socket);
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    socket.once('error', reject);
  });
}

function loop(socket) {
  return new Promise((resolve) => {
    let sentAt = 0;
    let timer;
    let done = false;
    const end = () => {
      done = true;
      clearTimeout(timer);
      resolve();
    };
    const fail = (reason) => {
      if (done) return;
      errors++;
      errorMessages.add(reason);
      end();
    };
    const send = () => {
      sentAt = performance.now();
      timer = setTimeout(() => fail(`no echo within ${ECHO_TIMEOUT_MS} ms`), ECHO_TIMEOUT_MS);
      socket.send(payload);
    };
    socket.on('message', (data) => {
      clearTimeout(timer);
      if (String(data) !== payload) return fail('echo differs from message');
      latenciesMs.push(performance.now() - sentAt);
      if (performance.now() < endAt) send();
      else end();
    });
    socket.on('close', () => fail('connection closed'));
    socket.on('error', (err) => fail(err.message));
    send();
  });
}

function finish(fatal) {
  const durationS = (performance.now() - startedAt) / 1000;
  const sorted = latenciesMs.sort((a, b) => a - b);
  if (fatal) {
    errors++;
    errorMessages.add(fatal);
  }
  const result = {
    requests: sorted.length,
    durationS,
    rps: sorted.length / durationS,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors,
    errorDetail: [...errorMessages].join('; '),
  };
  for (const socket of sockets) socket.terminate();
  if (values.check && (errors || !sorted.length)) {
    console.error(result.errorDetail || 'no echo received');
    process.exit(1);
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

try {
  const opened = await Promise.all(Array.from({ length: connections }, open));
  startedAt = performance.now();
  endAt = startedAt + durationMs;
  await Promise.all(opened.map(loop));
  finish();
} catch (err) {
  if (values.check) {
    console.error(err.message);
    process.exit(1);
  }
  finish(err.message);
}
