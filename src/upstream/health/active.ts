// Active health checks: a producer of health state, separate from the request path. It probes
// every endpoint of one upstream on its own timer and reports each result through a sink. In
// this process the sink applies results to the endpoints directly; with several worker
// processes, one process (the primary) runs the producers and publishes the same
// (endpoint id, up, reason) results to the workers, which apply them with Cluster.applyProbe
// (their clusters started with `probes: false`) — so the number of probes never grows with
// the number of workers. A checker sends nothing until start().
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { HealthCheckConfig } from '../config/types.js';

export interface ProbeTarget {
  readonly id: string;
  readonly origin: string;
  readonly authority: string;
  /** The verdict to start from (a reload hands on the last one); up when absent. */
  readonly health?: { readonly activeUp: boolean };
}

/** One probe's outcome: `detail` says what was seen ("status 503", "timeout", "refused"...). */
export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** Receives each probe result and the state it leads to (after rise/fall). */
export type HealthSink = (target: ProbeTarget, result: ProbeResult, transition: 'up' | 'down' | null, latencyMs: number) => void;

interface Tracked {
  readonly target: ProbeTarget;
  up: boolean;
  streak: number; // consecutive results against the current state
  timer: NodeJS.Timeout | null;
  inflight: boolean;
  /** Ends the probe in flight at once (its socket and timeout timer), for stop() and setTargets(). */
  cancel: (() => void) | null;
}

const STOPPED: ProbeResult = Object.freeze({ ok: false, detail: 'stopped' });

export class ActiveHealthChecker {
  private readonly config: HealthCheckConfig;
  private readonly sink: HealthSink;
  private tracked: Tracked[];
  private readonly bodyPattern: RegExp | null;
  /** Probes go out only between start() and stop(): building a checker sends nothing. */
  private running = false;
  private stopped = false;

  /** Between start() and stop(): probes go out. */
  get probing(): boolean {
    return this.running;
  }

  constructor(targets: readonly ProbeTarget[], config: HealthCheckConfig, sink: HealthSink) {
    this.config = config;
    this.sink = sink;
    this.bodyPattern = config.expect_body === null ? null : new RegExp(config.expect_body);
    this.tracked = targets.map((target) => ({ target, up: target.health?.activeUp ?? true, streak: 0, timer: null, inflight: false, cancel: null }));
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // The first round goes out at once (within the jitter), so a dead server is found quickly.
    for (const t of this.tracked) this.schedule(t, this.jitter(0));
  }

  /** The endpoint set changed (DNS discovery): keep the state of known targets, probe new ones now. */
  setTargets(targets: readonly ProbeTarget[]): void {
    const known = new Map(this.tracked.map((t) => [t.target, t]));
    const next: Tracked[] = [];
    for (const target of targets) {
      const t = known.get(target);
      if (t !== undefined) {
        known.delete(target);
        next.push(t);
      } else {
        const fresh: Tracked = { target, up: target.health?.activeUp ?? true, streak: 0, timer: null, inflight: false, cancel: null };
        next.push(fresh);
        this.schedule(fresh, this.jitter(0));
      }
    }
    for (const gone of known.values()) halt(gone);
    this.tracked = next;
  }

  stop(): void {
    this.running = false;
    this.stopped = true;
    for (const t of this.tracked) halt(t);
  }

  /** interval ± jitter%, so the probes of many upstreams (and many ushers) do not line up. */
  private jitter(base: number): number {
    const spread = (this.config.interval * this.config.jitter) / 100;
    return Math.max(0, base + (Math.random() * 2 - 1) * spread);
  }

  private schedule(t: Tracked, delay: number): void {
    if (!this.running) return;
    t.timer = setTimeout(() => void this.run(t), delay);
    t.timer.unref();
  }

  private async run(t: Tracked): Promise<void> {
    t.timer = null;
    if (!this.running || t.inflight) return;
    t.inflight = true;
    const started = performance.now();
    const result = this.config.type === 'tcp' ? await probeTcp(t, this.config.timeout) : await this.probeHttp(t);
    t.inflight = false;
    if (!this.running || !this.tracked.includes(t)) return; // stopped, or dropped by discovery meanwhile
    let transition: 'up' | 'down' | null = null;
    if (result.ok === t.up) {
      t.streak = 0;
    } else if (++t.streak >= (t.up ? this.config.fall : this.config.rise)) {
      t.up = result.ok;
      t.streak = 0;
      transition = t.up ? 'up' : 'down';
    }
    this.sink(t.target, result, transition, performance.now() - started);
    this.schedule(t, this.jitter(this.config.interval));
  }

  private probeHttp(t: Tracked): Promise<ProbeResult> {
    const c = this.config;
    const pattern = this.bodyPattern;
    const target = t.target;
    return new Promise<ProbeResult>((resolve) => {
      let settled = false;
      const done = (r: ProbeResult) => {
        if (settled) return;
        settled = true;
        t.cancel = null;
        clearTimeout(timer);
        req.destroy();
        resolve(r);
      };
      const make = target.origin.startsWith('https:') ? httpsRequest : httpRequest;
      const url = new URL(c.path, target.origin);
      const req = make(url, { method: c.method, agent: false, headers: { host: c.host ?? target.authority, 'user-agent': 'usher-health-check', connection: 'close' } }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (!statusExpected(c.expect_status, status)) return done({ ok: false, detail: `status ${status}` });
        if (pattern === null) return done({ ok: true, detail: `status ${status}` });
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          // A health page is small: 64 KiB is enough to find the pattern in.
          if (body.length < 65536) body += chunk;
        });
        res.on('end', () => done(pattern.test(body) ? { ok: true, detail: `status ${status}` } : { ok: false, detail: 'body mismatch' }));
        res.on('error', () => done({ ok: false, detail: 'reset' }));
      });
      const timer = setTimeout(() => done({ ok: false, detail: 'timeout' }), c.timeout);
      req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: describeError(err) }));
      t.cancel = () => done(STOPPED);
      req.end();
    });
  }
}

/** Expected status ranges, each [low, high] inclusive. */
function statusExpected(ranges: readonly (readonly [number, number])[], status: number): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

/** Stops everything running for a target: its next-probe timer and its probe in flight. */
function halt(t: Tracked): void {
  if (t.timer !== null) clearTimeout(t.timer);
  t.timer = null;
  t.cancel?.();
}

function probeTcp(t: Tracked, timeout: number): Promise<ProbeResult> {
  const url = new URL(t.target.origin);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const socket: Socket = connect({ host, port });
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      t.cancel = null;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: 'timeout' }), timeout);
    socket.on('connect', () => done({ ok: true, detail: 'connected' }));
    socket.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: describeError(err) }));
    t.cancel = () => done(STOPPED);
  });
}

function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return err.code ?? err.message;
  }
}
