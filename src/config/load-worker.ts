// Worker side of load-off-thread.ts: loads the file (or checks the object) here, off the
// serving thread, and hands the result over a slice of routes per request of the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile, loadConfigObject, loadConfigText } from './load.js';
import { toMessages, type LoadJob } from './transfer.js';

const job = workerData as LoadJob;
const port = parentPort!;
const messages = toMessages('path' in job ? await loadConfigFile(job.path, job.env) : 'text' in job ? loadConfigText(job.text, job.file, job.env) : loadConfigObject(job.object, job.source));
let next = 0;
port.on('message', () => {
  port.postMessage(messages[next++]);
});
