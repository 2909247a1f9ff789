// The admin listener (issue #15): a small JSON API on its own node:http server, never one of the
// proxy listeners, so no route can reach it. With a token, every request must carry
// `Authorization: Bearer TOKEN` (compared in constant time); without one (loopback only, the
// config check sees to it) anyone on the host may use it.
//
// The dashboard (dashboard.ts) is for browsers, which cannot add that header to a page load or
// an EventSource: with a token, GET / answers a browser with a login form (401); POSTing the
// token to /login sets a cookie (HttpOnly, SameSite=Strict) holding a hash derived from the
// token, which then authorises GET and HEAD requests only (the page, /events, the JSON views):
// a cookie never authorises a change (drain, apply, purge), so a cross-site form could not use
// it even where SameSite is not enforced. `http://HOST:PORT/#token=TOKEN` logs in at once (the
// fragment never leaves the browser; the login page posts it). A new token (a reload) ends
// every cookie made from the old one.
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig } from './config.js';
import type { AdminHost } from './host.js';
import { handle, type Reply } from './api.js';
import { Dashboard, pageFile, sendFile, serveAsset } from './dashboard.js';

/** Request bodies (a candidate config, a weight) larger than this are refused with 413. */
const MAX_BODY = 32 * 1024 * 1024;

export class AdminServer {
  private readonly server: Server;
  private config: AdminConfig;
  private tokenHash: Buffer | null;
  /** The dashboard's cookie value (hex), derived from the token; null without a token. */
  private cookieValue: Buffer | null;
  readonly dashboard: Dashboard;

  private constructor(
    private readonly host: AdminHost,
    config: AdminConfig,
  ) {
    this.config = config;
    this.tokenHash = hashToken(config.token);
    this.cookieValue = cookieFor(config.token);
    this.dashboard = new Dashboard(host);
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
    // A new token: the streams opened with the old one end (their pages reconnect, and must log in again).
    if (config.token !== this.config.token) this.dashboard.close();
    this.config = config;
    this.tokenHash = hashToken(config.token);
    this.cookieValue = cookieFor(config.token);
  }

  close(): Promise<void> {
    this.dashboard.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private tokenMatches(token: string): boolean {
    // Hashes have the same length whatever the token: timingSafeEqual needs that, and the
    // comparison leaks nothing about the token's length.
    return this.tokenHash !== null && timingSafeEqual(hashToken(token)!, this.tokenHash);
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.tokenHash === null) return true;
    const h = req.headers.authorization;
    if (h !== undefined && /^bearer /i.test(h)) return this.tokenMatches(h.slice(7).trim());
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const c = cookieOf(req, this.cookieName());
    return c !== undefined && c.length === this.cookieValue!.length && timingSafeEqual(Buffer.from(c), this.cookieValue!);
  }

  /** One cookie per admin port: two ushers on one host (cookies ignore ports) keep theirs apart. */
  private cookieName(): string {
    return `usher_admin_${this.address().port}`;
  }

  /** The dashboard's own paths; true when answered. */
  private async dashboardRequest(req: IncomingMessage, res: ServerResponse, path: string, authorized: boolean): Promise<boolean> {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    // The page's scripts and styles hold no data: served to anyone who may reach the listener (the login page uses them).
    if ((method === 'GET' || head) && (await serveAsset(path, res, head))) return true;
    if (path === '/favicon.ico') {
      req.resume();
      res.writeHead(204, { 'cache-control': 'max-age=86400' }).end();
      return true;
    }
    if (path === '/login' && method === 'POST') {
      const body = await readBody(req);
      const token = body === null ? '' : tokenFromForm(body, req.headers['content-type']);
      if (this.tokenHash === null || this.tokenMatches(token)) {
        const cookie = this.cookieValue === null ? [] : [`${this.cookieName()}=${this.cookieValue.toString()}; Path=/; HttpOnly; SameSite=Strict`];
        res.writeHead(303, { location: '/', 'set-cookie': cookie, 'cache-control': 'no-store', 'content-length': 0 }).end();
      } else {
        this.host.logger.warn({ remote: req.socket.remoteAddress }, 'admin: dashboard login with a wrong token');
        res.writeHead(303, { location: '/?login=failed', 'cache-control': 'no-store', 'content-length': 0 }).end();
      }
      return true;
    }
    if (path === '/logout' && (method === 'POST' || method === 'GET')) {
      req.resume();
      res.writeHead(303, { location: '/', 'set-cookie': `${this.cookieName()}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`, 'cache-control': 'no-store', 'content-length': 0 }).end();
      return true;
    }
    if (path === '/' && (method === 'GET' || head) && wantsHtml(req)) {
      await sendFile(res, pageFile(authorized ? 'index.html' : 'login.html'), head, authorized ? 200 : 401);
      return true;
    }
    if (path === '/events' && method === 'GET' && authorized) {
      this.dashboard.attach(req, res);
      return true;
    }
    return false;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const ok = this.authorized(req);
      const path = (req.url ?? '/').split('?')[0]!;
      if (await this.dashboardRequest(req, res, path, ok)) return;
      if (!ok) {
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

/** The cookie's value: a hash of the token under a label of its own (the cookie is not the bearer token). */
function cookieFor(token: string | null): Buffer | null {
  return token === null ? null : Buffer.from(createHash('sha256').update('usher dashboard cookie\0').update(token).digest('hex'));
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  const h = req.headers.cookie;
  if (h === undefined) return undefined;
  for (const part of h.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A browser's page load (Accept: text/html first or alone), not curl's or a client's JSON request. */
function wantsHtml(req: IncomingMessage): boolean {
  return /^\s*text\/html\b/i.test(req.headers.accept ?? '');
}

/** token=... from the login form (urlencoded) or {"token": ...}. */
function tokenFromForm(body: string, type: string | undefined): string {
  if (type !== undefined && /json/i.test(type)) {
    try {
      const t = (JSON.parse(body) as { token?: unknown }).token;
      return typeof t === 'string' ? t : '';
    } catch {
      return '';
    }
  }
  return (new URLSearchParams(body).get('token') ?? '').trim();
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
