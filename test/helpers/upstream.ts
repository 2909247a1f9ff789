import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';

export interface TestUpstream {
  url: string;
  port: number;
  server: Server;
  /** Every request head the upstream received, in order. */
  requests: { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[] }[];
  close(): Promise<void>;
}

/** A real HTTP/1.1 upstream on 127.0.0.1:0. The handler defaults to answering its own name. */
export async function startUpstream(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestUpstream> {
  const requests: TestUpstream['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders });
    if (handler) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(name);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface RawUpstream {
  url: string;
  port: number;
  /** Sockets accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** A TCP "upstream" that answers every connection with `onConnection` — for malformed responses. */
export async function startRawUpstream(onConnection: (socket: Socket, head: string) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: TcpServer = createTcpServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        onConnection(socket, buf.slice(0, end));
      }
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
