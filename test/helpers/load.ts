import { Agent } from 'node:http';
import { request, type Reply } from './client.js';

/** Sends `n` requests, `parallel` at a time over keep-alive connections; replies in index order. */
export async function fire(url: string, n: number, parallel: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<Reply[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const out = new Array<Reply>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await request(url, { headers: headers(i), agent });
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    agent.destroy();
  }
  return out;
}
