// The live dashboard (issue #15 pt 4): the page at GET / (for a browser: Accept text/html), its
// static files under /dashboard/, and GET /events, a server-sent event stream the page reads.
//
// While at least one client is connected, a 1 s tick takes the live window of every process
// that serves requests (this one, or every worker through the primary: Fleet.live, the same
// path as /status and /metrics), merges them (counts add, the duration histograms add) and
// sends one `tick` event to every client: per route requests, 5xx and p50/p99 of that second,
// and the errors of that second. `upstreams` (the servers' health, as GET /upstreams shows it,
// with passive ejections from every worker) follows each tick when it changed; `status` (config
// source and hash, reload history, workers) every 5 s; `certificates` every 60 s. Each event is
// serialised once for all clients. With no client there is no tick, and the collectors
// unsubscribe from the request path (live.ts).
//
// The page is plain HTML/JS/CSS (src/admin/dashboard/, copied to dist/ by scripts/build.js);
// the charts are uPlot, served from the installed package (no CDN, no copy in this repository).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminHost } from './host.js';
import { mergeRoute, quantile, type LiveEjection, type LiveError, type LiveWindow, type RouteWindow } from './live.js';
import { certificatesView } from './certificates.js';
import { status, upstreams } from './api.js';

const TICK_MS = 1000;
/** Ticks kept to replay to a client that connects (its charts start with the last 5 minutes). */
const HISTORY = 300;
const STATUS_EVERY = 5;
const CERTIFICATES_EVERY = 60;
/** A client this far behind (bytes queued) is dropped: it reconnects and starts from the replay. */
const MAX_QUEUED = 4 * 1024 * 1024;
/** Streams at once; more are refused (503): each costs a copy of every event. */
export const MAX_CLIENTS = 64;

const here = dirname(fileURLToPath(import.meta.url));
/**
 * Our page: next to this module (dist/src/admin/dashboard/, copied by scripts/build.js), or, in
 * a checkout built by plain `tsc`, the sources (src/admin/dashboard/ from dist/src/admin/).
 */
const PAGE_DIR = [join(here, 'dashboard'), join(here, '..', '..', '..', 'src', 'admin', 'dashboard')].find((d) => existsSync(join(d, 'index.html'))) ?? join(here, 'dashboard');
const uplotDir = (() => {
  try {
    return dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
  } catch {
    return null;
  }
})();

const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** The files under /dashboard/ (anything else is 404): ours, and uPlot's from its package. */
const ASSETS: Record<string, () => string | null> = {
  'app.js': () => join(PAGE_DIR, 'app.js'),
  'app.css': () => join(PAGE_DIR, 'app.css'),
  'login.js': () => join(PAGE_DIR, 'login.js'),
  'uPlot.iife.min.js': () => (uplotDir === null ? null : join(uplotDir, 'uPlot.iife.min.js')),
  'uPlot.min.css': () => (uplotDir === null ? null : join(uplotDir, 'uPlot.min.css')),
};

/** The page's headers: nothing but our own files and the event stream; never framed. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

export async function sendFile(res: ServerResponse, file: string | null, head: boolean, status = 200): Promise<void> {
  let body: Buffer;
  try {
    if (file === null) throw new Error('uplot is not installed');
    body = await readFile(file);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`the dashboard's file ${file ?? 'uPlot'} could not be read: ${(err as Error).message}\n`);
    return;
  }
  const ext = file!.slice(file!.lastIndexOf('.') + 1);
  res.writeHead(status, { ...PAGE_HEADERS, 'content-type': TYPES[ext] ?? 'application/octet-stream', 'content-length': body.length });
  res.end(head ? undefined : body);
}

/** GET /dashboard/NAME: true when it answered (a file of the dashboard, or 404 for another name under /dashboard/). */
export async function serveAsset(path: string, res: ServerResponse, head: boolean): Promise<boolean> {
  if (!path.startsWith('/dashboard/')) return false;
  const name = path.slice('/dashboard/'.length);
  const file = Object.hasOwn(ASSETS, name) ? ASSETS[name]!() : undefined;
  if (file === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no dashboard file ${name}\n`);
    return true;
  }
  await sendFile(res, file, head);
  return true;
}

export const pageFile = (name: 'index.html' | 'login.html'): string => join(PAGE_DIR, name);

interface Client {
  readonly res: ServerResponse;
}

type RouteRow = [name: string, count: number, errors: number, p50: number | null, p99: number | null];
type TotalRow = [count: number, errors: number, p50: number | null, p99: number | null];

export class Dashboard {
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private n = 0;
  private readonly history: string[] = [];
  private last: { upstreams?: string; status?: string; certificates?: string } = {};
  /** The latest passive ejections per process (with workers, the primary's own clusters do not eject). */
  private ejected: (LiveEjection & { worker: number | null })[] = [];

  constructor(private readonly host: AdminHost) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** GET /events: the stream. The replay (last ticks, then the latest of every other event) goes first. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      const body = `${JSON.stringify({ error: 'too_many_streams', message: `the dashboard has ${MAX_CLIENTS} event streams open already: close one` })}\n`;
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '10', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    res.socket?.setNoDelay(true);
    let replay = 'retry: 2000\n\n';
    for (const t of this.history) replay += t;
    for (const e of [this.last.status, this.last.upstreams, this.last.certificates]) if (e !== undefined) replay += e;
    res.write(replay);
    const client: Client = { res };
    this.clients.add(client);
    const gone = () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    };
    req.on('close', gone);
    res.on('error', gone);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.tick(), TICK_MS);
      // First take: the collectors start; status, upstreams and certificates at once for this client.
      void this.tick(true);
    }
  }

  /** The admin listener closes: every stream ends (a browser reconnects to wherever it moved). */
  close(): void {
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.stop();
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.history.length = 0;
    this.last = {};
    this.n = 0;
  }

  private broadcast(event: string): void {
    for (const c of this.clients) {
      if (c.res.writableLength > MAX_QUEUED) {
        c.res.destroy();
        this.clients.delete(c);
        continue;
      }
      c.res.write(event);
    }
  }

  private async tick(first = false): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const n = this.n++;
      const windows = await this.windows();
      if (this.timer === null) return;
      if (!first) {
        const event = sse('tick', merge(windows.map((w) => w.window)));
        this.history.push(event);
        if (this.history.length > HISTORY) this.history.shift();
        this.broadcast(event);
      }
      this.ejected = windows.flatMap((w) => w.window.ejected.map((e) => ({ ...e, worker: w.worker })));
      const up = sse('upstreams', this.upstreamsView());
      if (up !== this.last.upstreams) this.broadcast((this.last.upstreams = up));
      if (n % STATUS_EVERY === 0) {
        const st = sse('status', await status(this.host));
        if (this.timer === null) return;
        this.broadcast((this.last.status = st));
      }
      if (n % CERTIFICATES_EVERY === 0) {
        let body: unknown;
        try {
          const inv = await this.host.certificateInventory();
          body = certificatesView(inv.served, inv.pending);
        } catch (err) {
          body = { error: `no worker told its listeners' certificates: ${(err as Error).message}` };
        }
        if (this.timer === null) return;
        const c = sse('certificates', body);
        if (c !== this.last.certificates) this.broadcast((this.last.certificates = c));
      }
    } catch (err) {
      this.host.logger.warn({ err }, 'dashboard: a tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private async windows(): Promise<{ worker: number | null; window: LiveWindow }[]> {
    if (this.host.fleet === undefined) return [{ worker: null, window: this.host.live.take() }];
    return this.host.fleet.live();
  }

  /** GET /upstreams' view, each server with the passive ejections the workers report. */
  private upstreamsView(): unknown {
    const view = upstreams(this.host) as { upstreams: { name: string; servers: Record<string, unknown>[] }[] };
    if (this.host.fleet === undefined) return view;
    for (const u of view.upstreams) {
      for (const s of u.servers) {
        const ej = this.ejected.filter((e) => e.upstream === u.name && e.server === s.id);
        if (ej.length === 0) continue;
        s.ejected = true;
        s.ejected_in_workers = ej.map((e) => e.worker);
        s.ejected_until = new Date(Math.max(...ej.map((e) => e.until))).toISOString();
        s.reason = ej[0]!.reason;
        s.ejections = ej.reduce((n, e) => n + e.ejections, 0);
        if (s.verdict === 'up') s.verdict = 'ejected';
      }
    }
    return view;
  }
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);

/** One tick from the processes' windows of the same second. */
export function merge(windows: readonly LiveWindow[]): { t: number; ms: number; routes: RouteRow[]; total: TotalRow; errors: LiveError[] } {
  const byRoute = new Map<string, RouteWindow>();
  let ms = 0;
  for (const w of windows) {
    ms = Math.max(ms, w.ms);
    for (const [name, r] of Object.entries(w.routes)) byRoute.set(name, mergeRoute(byRoute.get(name), r));
  }
  let total: RouteWindow | undefined;
  const routes: RouteRow[] = [];
  for (const [name, r] of byRoute) {
    total = mergeRoute(total, r);
    routes.push([name, r.count, r.errors, round(quantile(r.hist, 0.5)), round(quantile(r.hist, 0.99))]);
  }
  routes.sort((a, b) => b[1] - a[1]);
  const errors = windows.flatMap((w) => w.errors).sort((a, b) => a.at - b.at);
  return {
    t: Date.now(),
    ms: ms || TICK_MS,
    routes,
    total: total === undefined ? [0, 0, null, null] : [total.count, total.errors, round(quantile(total.hist, 0.5)), round(quantile(total.hist, 0.99))],
    errors,
  };
}
