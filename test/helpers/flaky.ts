import type { IncomingMessage, ServerResponse } from 'node:http';
import { startUpstream, type TestUpstream } from './upstream.js';

/** What a test can flip on a flaky upstream. */
export interface FlakyState {
  /** What /healthz answers: 200 "ok" when true, 503 when false. */
  healthy: boolean;
  /** Status for ordinary requests (200 by default). */
  status: number;
  /** Ordinary requests answered so far. */
  served: number;
}

export type FlakyUpstream = TestUpstream & FlakyState & { name: string };

/** An upstream whose health page and answers a test can flip: healthy or not, 200 or 5xx. */
export async function startFlaky(name: string): Promise<FlakyUpstream> {
  const state: FlakyState = { healthy: true, status: 200, served: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/healthz') {
      res.writeHead(state.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(state.healthy ? `ok ${name}` : 'sick');
      return;
    }
    state.served++;
    res.writeHead(state.status, { 'content-type': 'text/plain' });
    res.end(name);
  };
  const up = await startUpstream(name, handler);
  const flaky = up as FlakyUpstream;
  flaky.name = name;
  for (const key of ['healthy', 'status', 'served'] as const) {
    Object.defineProperty(flaky, key, {
      get: () => state[key],
      set: (v: never) => {
        state[key] = v;
      },
    });
  }
  return flaky;
}
