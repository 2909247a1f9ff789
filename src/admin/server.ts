// The admin listener (issue #15): a small JSON API on its own node:http server, never one of the
// proxy listeners, so no route can reach it. With a token, every request must carry
// `Authorization: Bearer TOKEN` (compared in constant time); without one (loopback only, the
// config check sees to it) anyone on the host may use it.
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig } from './config.js';
import type { AdminHost } from './host.js';
import { handle, type Reply } from './api.js';

/** Request bodies (a candidate config, a weight) larger than this are refused with 413. */
const MAX_BODY = 32 * 1024 * 1024;

export class AdminServer {
  private readonly server: Server;
  private config: AdminConfig;
  private tokenHash: Buffer | null;

  private constructor(
    private readonly host: AdminHost,
    config: AdminConfig,
  ) {
    this.config = config;
    this.tokenHash = hashToken(config.token);
    this.server = createServer({ requestTimeout: 60_000, headersTimeout: 10_000 }, (req, res) => void this.onRequest(req, res));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  static async open(host: AdminHost, config: AdminConfig): Promise<AdminServer> {
    const admin = new AdminServer(host, config);
    await new Promise<void>((resolve, reject) => {
      admin.server.once('error', reject);
      admin.server.listen({ host: config.host, port: config.port }, () => {
        admin.server.off('error', reject);
        admin.server.on('error', (err) => host.logger.error({ err, address: config.address }, 'admin listener error'));
        resolve();
      });
    });
    host.logger.info({ address: `${config.host}:${admin.address().port}`, token: config.token !== null }, 'admin listener open');
    return admin;
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * Whether `config` listens where this one does (then a reload keeps this server): the same
   * host and the port it is bound to. Port 0 asks for a fresh port, as for proxy listeners.
   */
  sameAddress(config: AdminConfig): boolean {
    return config.host === this.config.host && config.port !== 0 && config.port === this.address().port;
  }

  /** A reload kept the address: the new token applies to the next request. */
  update(config: AdminConfig): void {
    this.config = config;
    this.tokenHash = hashToken(config.token);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.tokenHash === null) return true;
    const h = req.headers.authorization;
    if (h === undefined || !/^bearer /i.test(h)) return false;
    // Hashes have the same length whatever the token: timingSafeEqual needs that, and the
    // comparison leaks nothing about the token's length.
    return timingSafeEqual(hashToken(h.slice(7).trim())!, this.tokenHash);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      if (!this.authorized(req)) {
        reply = { status: 401, body: { error: 'unauthorized', message: 'this admin API needs `Authorization: Bearer TOKEN` (admin.token)' }, headers: { 'www-authenticate': 'Bearer realm="usher admin"' } };
        req.resume();
      } else {
        const body = req.method === 'GET' || req.method === 'HEAD' ? '' : await readBody(req);
        reply = body === null ? { status: 413, body: { error: 'body_too_large', message: `the request body is over ${MAX_BODY} bytes` } } : await handle(this.host, req.method ?? 'GET', req.url ?? '/', body);
      }
    } catch (err) {
      this.host.logger.error({ err, url: req.url }, 'admin request failed');
      reply = { status: 500, body: { error: 'internal_error', message: (err as Error).message } };
    }
    const text = typeof reply.body === 'string' ? reply.body : `${JSON.stringify(reply.body, null, 2)}\n`;
    res.writeHead(reply.status, {
      'content-type': reply.contentType ?? 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
      ...reply.headers,
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  }
}

function hashToken(token: string | null): Buffer | null {
  return token === null ? null : createHash('sha256').update(token).digest();
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        resolve(null);
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
