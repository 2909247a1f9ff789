// Open-loop load generator: requests are sent on a fixed schedule (request i is due at
// start + i / rate), whatever the server's answers do, so latency is measured at a load the
// server sustains instead of at saturation. wrk and autocannon are closed-loop (each connection
// waits for its answer before sending again): a stalled server is then simply sent less, and
// the stall shows in one sample instead of in every request that should have been sent
// meanwhile ("coordinated omission"). Here each latency runs from the request's *intended*
// send time to the end of its response: a request that waited for a free connection, or for a
// late timer, carries that wait in its latency, as in wrk2.
//
// The schedule is driven from the event loop: when the next request is due within 1.5 ms the
// loop re-checks on setImmediate (a busy loop, but Node timers have a 1 ms granularity, which
// would add up to 1 ms to every latency), else it sleeps on setTimeout. How late the client
// itself was (due → queued) is reported as scheduleLagP99Ms, so its own noise can be judged.
//
// HTTP/1.1 over plain TCP or TLS on `--connections` keep-alive connections, opened before the
// schedule starts (with --close: a new connection per request, its set-up included in the
// latency); WebSocket echo with --ws. Prints one JSON line:
//   { requests, durationS, rps, targetRate, p50Ms, p99Ms, p999Ms, maxMs, errors, errorDetail,
//     scheduleLagP99Ms, maxQueue, sustained }
// Usage: node bench/tools/open-loop.js --url URL --rate N --duration S [--connections 50]
//        [--method POST --body-bytes N | --body-file F --content-type T] [--close] [--header 'N: V' ...] [--ws [--size 32]]
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { clearInterval, setImmediate, setInterval } from 'node:timers';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { percentile } from '../lib/stats.js';
import { HttpSlot } from './open-loop-http.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '50' },
    method: { type: 'string', default: 'GET' },
    'body-bytes': { type: 'string' },
    close: { type: 'boolean', default: false },
    'accept-encoding': { type: 'string' },
    authorization: { type: 'string' },
    'body-file': { type: 'string' },
    'content-type': { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
    ws: { type: 'boolean', default: false },
    size: { type: 'string', default: '32' },
  },
});
const rate = Number(values.rate);
const durationMs = Number(values.duration) * 1000;
const connections = Number(values.connections);
if (!values.url || !(rate > 0) || !(durationMs > 0) || !(connections > 0)) {
  console.error('usage: --url URL --rate N --duration S [--connections N] [--method M --body-bytes N] [--close] [--ws]');
  process.exit(2);
}
const REQUEST_TIMEOUT_MS = 5000;
const DRAIN_MS = 5000; // after the last due time, how long unfinished requests may take
const SUSTAIN_SLACK_MS = 500;

const total = Math.max(1, Math.round((rate * durationMs) / 1000));
const intervalMs = 1000 / rate;
const latencies = new Float64Array(total);
const lags = new Float64Array(total);
let completed = 0;
let errors = 0;
const errorMessages = new Map();
let maxQueue = 0;
let lastDoneAt = 0;

// Due times waiting for a free connection, oldest first (a ring would do; this is amortised).
let queue = [];
let queueHead = 0;
const idle = [];
const slots = [];

function done(slot, intendedAt) {
  const now = performance.now();
  latencies[completed++] = now - intendedAt;
  lastDoneAt = now;
  release(slot);
}

function failed(slot, reason) {
  errors++;
  errorMessages.set(reason, (errorMessages.get(reason) ?? 0) + 1);
  release(slot);
}

function release(slot) {
  idle.push(slot);
  dispatch();
}

function dispatch() {
  while (queueHead < queue.length && idle.length) {
    idle.pop().send(queue[queueHead++]);
  }
  if (queueHead > 4096 && queueHead * 2 > queue.length) {
    queue = queue.slice(queueHead);
    queueHead = 0;
  }
}

function makeSlot() {
  if (values.ws) return new WsSlot(values.url, 'x'.repeat(Number(values.size)), { done, failed });
  return new HttpSlot(values.url, {
    method: values.method,
    bodyBytes: values['body-bytes'] ? Number(values['body-bytes']) : 0,
    close: values.close,
    acceptEncoding: values['accept-encoding'],
    authorization: values.authorization,
    body: values['body-file'] ? fs.readFileSync(values['body-file']) : undefined,
    contentType: values['content-type'],
    headers: values.header,
    timeoutMs: REQUEST_TIMEOUT_MS,
    done,
    failed,
  });
}

class WsSlot {
  constructor(url, payload, { done: onDone, failed: onFailed }) {
    Object.assign(this, { url, payload, onDone, onFailed, intendedAt: 0, busy: false, timer: null });
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, { handshakeTimeout: REQUEST_TIMEOUT_MS, perMessageDeflate: false });
      this.socket = socket;
      socket.once('open', resolve);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
      socket.once('error', reject);
      socket.on('message', (data) => this.finish(String(data) === this.payload ? null : 'echo differs from message'));
      socket.on('close', () => this.finish('connection closed'));
    });
  }

  send(intendedAt) {
    this.intendedAt = intendedAt;
    this.busy = true;
    if (this.socket?.readyState !== WebSocket.OPEN) return this.finish('connection closed');
    this.timer = setTimeout(() => this.finish(`no echo within ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
    this.socket.send(this.payload);
  }

  destroy() {
    clearTimeout(this.timer);
    this.socket?.terminate();
  }

  finish(error) {
    if (!this.busy) return;
    this.busy = false;
    clearTimeout(this.timer);
    if (error) this.onFailed(this, error);
    else this.onDone(this, this.intendedAt);
  }
}

function report(fatal) {
  if (fatal) {
    errors++;
    errorMessages.set(fatal, 1);
  }
  const unfinished = total - completed - errors;
  if (unfinished > 0 && !fatal) {
    errors += unfinished;
    errorMessages.set(`unfinished ${DRAIN_MS} ms after the last due time`, unfinished);
  }
  const sorted = latencies.subarray(0, completed).sort();
  const lagSorted = lags.sort();
  const spanS = Math.max(durationMs, lastDoneAt - startedAt) / 1000;
  const result = {
    requests: completed,
    durationS: spanS,
    rps: completed / spanS,
    targetRate: rate,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: completed ? sorted[completed - 1] : null,
    errors,
    errorDetail: [...errorMessages].map(([m, n]) => `${m} (${n})`).join('; '),
    scheduleLagP99Ms: percentile(lagSorted, 99),
    maxQueue,
    // Kept up with the schedule: (nearly) every request answered, and no backlog left at the end
    // (a proxy that keeps up answers the last request one latency after it was due; 500 ms late
    // means requests were queued behind it).
    sustained: completed >= 0.99 * total && lastDoneAt - startedAt <= durationMs + SUSTAIN_SLACK_MS,
  };
  for (const slot of slots) slot.destroy();
  console.log(JSON.stringify(result));
  process.exit(0);
}

let startedAt = 0;
let next = 0;

function tick() {
  const now = performance.now();
  const due = Math.min(total, Math.floor((now - startedAt) / intervalMs) + 1);
  for (; next < due; next++) {
    const intendedAt = startedAt + next * intervalMs;
    lags[next] = now - intendedAt;
    queue.push(intendedAt);
  }
  maxQueue = Math.max(maxQueue, queue.length - queueHead);
  dispatch();
  if (next >= total) {
    waitForDrain();
    return;
  }
  const wait = startedAt + next * intervalMs - performance.now();
  if (wait > 1.5) setTimeout(tick, wait - 1);
  else setImmediate(tick);
}

function waitForDrain() {
  const deadline = performance.now() + DRAIN_MS;
  const poll = setInterval(() => {
    if (completed + errors >= total || performance.now() > deadline) {
      clearInterval(poll);
      report();
    }
  }, 10); // polling for the end of the run, not a synchronisation sleep
}

// Hard bound whatever happens.
setTimeout(() => report('run did not finish in time'), durationMs + DRAIN_MS + REQUEST_TIMEOUT_MS + 5000).unref();

try {
  for (let i = 0; i < connections; i++) slots.push(makeSlot());
  // Keep-alive connections (and WebSockets) are opened before the clock starts.
  await Promise.all(slots.map((s) => s.open()));
  idle.push(...slots);
  startedAt = performance.now();
  tick();
} catch (err) {
  report(`could not connect: ${err.message}`);
}
