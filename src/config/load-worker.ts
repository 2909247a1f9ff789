// Worker side of loadConfigFileOffThread (load-off-thread.ts): loads the file here, off the
// serving thread, and hands the result over a slice of routes per request of the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile } from './load.js';
import { toMessages } from './transfer.js';

const { path, env } = workerData as { path: string; env: NodeJS.ProcessEnv };
const port = parentPort!;
const messages = toMessages(await loadConfigFile(path, env));
let next = 0;
port.on('message', () => {
  port.postMessage(messages[next++]);
});
