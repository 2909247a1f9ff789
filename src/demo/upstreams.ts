import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The built-in demo pool behind `npm start` with no config: small HTTP servers in the same
 * process, each answering with its own name, so repeated requests show the balancing.
 */
export interface DemoPool {
  urls: string[];
  close(): Promise<void>;
}

export async function startDemoUpstreams(count = 3): Promise<DemoPool> {
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `demo-${i}`;
    const server = createServer((req, res) => {
      req.resume();
      const body =
        `Hello from ${name}!\n` +
        `You asked for ${req.method} ${req.url}; usher forwarded it with:\n` +
        `  x-forwarded-for: ${req.headers['x-forwarded-for'] ?? ''}\n` +
        `  x-request-id:    ${req.headers['x-request-id'] ?? ''}\n`;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-demo-upstream': name });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return {
    urls,
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}

/** The embedded config used with the demo pool. */
export function demoConfig(urls: readonly string[], address = '127.0.0.1:8080'): Record<string, unknown> {
  return {
    listeners: [{ address }],
    upstreams: { demo: { servers: urls.map((url) => ({ url })) } },
    routes: [
      { name: 'usher-info', match: { path: '/_usher' }, respond: { status: 200, body: 'usher is running with its built-in demo config. Try: curl http://127.0.0.1:8080/\n' } },
      { name: 'demo', upstream: 'demo' },
    ],
    log: { level: 'info', access_log: true },
    // One process: the demo is for trying usher out, not for using every core.
    workers: 1,
  };
}
