// loadConfigFile (or loadConfigObject) in a worker thread, for the serving process: at start
// and on every reload. Two reasons:
//   - Time (issue #11): parsing, validating and checking 20k routes took ~2.7 s of CPU, and on
//     the serving thread one request waited 6.4 s. The main thread only receives the result, a
//     slice of routes per event-loop turn (it asks for the next slice from setImmediate, so
//     requests are served between slices).
//   - The serving isolate's hidden classes: compiling the schema validator (ajv's generated
//     code, thousands of object shapes) fills the transition trees of V8's shared literal maps;
//     after that, object literals first created later (Node's nextTick records, undici's and
//     http's per-request objects) get a fresh map each and go through the runtime: +40% CPU per
//     proxied small GET (bench/tools/callgrind.js: 234k vs 167k instructions). The worker is
//     another isolate, so the serving one never compiles the validator.
import { Worker } from 'node:worker_threads';
import { Issues, sortIssues } from './issues.js';
import { reviveConfig, reviveRoutes, type LoadJob, type LoadMessage } from './transfer.js';
import type { LoadResult, RouteConfig } from './types.js';

export function loadConfigFileOffThread(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  return offThread({ path, env: { ...env } }, path);
}

/** loadConfigObject in a worker thread: `object` must be structured-cloneable (plain data). */
export function loadConfigObjectOffThread(object: unknown, source: string): Promise<LoadResult> {
  return offThread({ object, source }, source);
}

/** loadConfigText in a worker thread; `file` names the text in messages and anchors relative paths. */
export function loadConfigTextOffThread(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  return offThread({ text, file, env: { ...env } }, file);
}

function offThread(job: LoadJob, path: string): Promise<LoadResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: LoadResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
      void worker.terminate();
    };
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: job });
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
