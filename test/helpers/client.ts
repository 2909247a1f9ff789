import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  trailers: NodeJS.Dict<string>;
}

/** A plain node:http request (no keep-alive unless an agent is given); resolves with the whole reply. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8'), trailers: res.trailers }),
      );
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Sends raw bytes on a new TCP connection and resolves with everything the server sent back
 * until it closed the connection (or `idleMs` passed with no data after the first byte).
 */
export function rawRequest(port: number, data: string | Buffer, idleMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    socket.on('data', (c: Buffer) => {
      out += c.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (err) => (out ? done() : reject(err)));
    socket.write(data);
  });
}

/** The status code of the first response in a raw reply ("HTTP/1.1 400 ..." → 400). */
export function rawStatus(reply: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
  return m ? Number(m[1]) : 0;
}
