// The pipeline runner (issue #10): what one phase costs per request — an empty phase (a length
// check), one synchronous filter, and three. (An awaited filter costs a promise and a microtask,
// which a synchronous loop cannot measure fairly.) From
// the compiled tree (run `npm run build` first).
import { runHeadHooks, runRequestHooks } from '../../dist/src/pipeline/runner.js';

const host = {
  hookReplied() {},
  hookFailed() {},
  resume() {},
};
const none = [];
const oneSync = [{ name: 'a', request: () => undefined }];
const threeSync = [1, 2, 3].map((i) => ({ name: `f${i}`, request: () => undefined }));
const headOne = [{ name: 'h', response: (_ctx, head) => void head.headers.length }];
const head = { status: 200, headers: ['content-type', 'text/plain'], local: false };

export const cases = [
  { name: 'pipeline: empty request phase', fn: () => runRequestHooks(host, 'request', none, 0), iterations: 20_000_000 },
  { name: 'pipeline: one sync request filter', fn: () => runRequestHooks(host, 'request', oneSync, 0), iterations: 10_000_000 },
  { name: 'pipeline: three sync request filters', fn: () => runRequestHooks(host, 'request', threeSync, 0), iterations: 5_000_000 },
  { name: 'pipeline: one sync response filter', fn: () => runHeadHooks(host, 'response', headOne, 0, head), iterations: 10_000_000 },
];
