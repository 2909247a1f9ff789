// loadConfigFile in a worker thread, for reloads while serving (issue #11): parsing, validating
// and checking 20k routes took ~2.7 s of CPU, and on the serving thread one request waited 6.4 s.
// The main thread only receives the result, a slice of routes per event-loop turn (it asks for
// the next slice from setImmediate, so requests are served between slices).
import { Worker } from 'node:worker_threads';
import { Issues, sortIssues } from './issues.js';
import { reviveConfig, reviveRoutes, type LoadMessage } from './transfer.js';
import type { LoadResult, RouteConfig } from './types.js';

export function loadConfigFileOffThread(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: LoadResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
      void worker.terminate();
    };
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: { path, env: { ...env } } });
    let head: Extract<LoadMessage, { kind: 'head' }> | undefined;
    const routes: RouteConfig[] = [];
    const ask = () => setImmediate(() => worker.postMessage('next'));
    worker.on('message', (m: LoadMessage) => {
      if (m.kind === 'failed') return done({ ok: false, errors: m.errors, warnings: m.warnings });
      if (m.kind === 'head') head = m;
      else routes.push(...reviveRoutes(m.routes));
      if (head !== undefined && routes.length === head.routes) return done({ ok: true, config: reviveConfig(head, routes), warnings: head.warnings });
      ask();
    });
    worker.on('error', (err) => done(failure(path, `cannot load the config: ${err.message}`)));
    worker.on('exit', (code) => done(failure(path, `cannot load the config: the loading thread exited (code ${code})`)));
    ask();
  });
}

function failure(file: string, message: string): LoadResult {
  const issues = new Issues(file);
  issues.error([], message);
  return { ok: false, errors: sortIssues(issues.errors), warnings: [] };
}
