// The native HTTP/1.1 client's pool for one upstream server (`engine: native`): keep-alive
// connections on net.Socket or tls, at most pool.max_connections of them, requests queued
// (first come, first served) while all are busy. An idle connection is reused last-in first-out
// (the warmest one; the others age out on keep_alive_timeout), and it is checked before reuse:
// one the upstream closed meanwhile is dropped, not written to. A reused connection the
// upstream closed at the very moment it was reused fails its request with upstream_reset, and
// the retry policy decides, as with undici (src/proxy/retry-decision.ts).
//
// Same contract as undici's Pool.dispatch with a legacy handler (src/proxy/attempt.ts), and
// the same timeouts: connect, response_header (from the end of the request), body_idle.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Clock, type Timed } from '../../util/clock.js';
import { H1Connection, type ConnectionOwner, type H1Handler, type H1Request } from './connection.js';
import { H1Error } from './errors.js';
import { BODY_NONE, buildHead, type BuiltHead } from './head.js';
import { guardWrites } from '../write-reset.js';

export interface H1PoolOptions {
  /** "http://host:port" or "https://host:port" (the server's origin). */
  origin: string;
  maxConnections: number;
  keepAliveTimeout: number;
  connectTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  /** https: the TLS options (SNI, verification, CA, client certificate). */
  tls: ConnectionOptions | undefined;
}

/** undici's keepAliveTimeoutThreshold: an upstream's Keep-Alive timeout is trusted less this much. */
const KEEP_ALIVE_MARGIN_MS = 2000;

interface Queued {
  req: H1Request;
  head: BuiltHead;
  handler: H1Handler;
}

const kConnecting = Symbol('usher.h1.connecting');
type PendingSocket = Socket & { [kConnecting]?: Connecting };

/** A socket on its way to being a connection, with the request that opened it. */
class Connecting implements Timed {
  clock: Clock<Connecting> | null = null;
  deadline = 0;
  prevTimed: Timed | null = null;
  nextTimed: Timed | null = null;
  constructor(
    readonly pool: H1Pool,
    readonly socket: PendingSocket,
    public job: Queued | null,
  ) {}
}

export class H1Pool implements ConnectionOwner {
  private readonly host: string;
  private readonly port: number;
  private readonly o: H1PoolOptions;
  readonly headerClock: Clock<H1Connection>;
  readonly bodyClock: Clock<H1Connection>;
  private readonly connectClock: Clock<Connecting>;
  private readonly idleClocks = new Map<number, Clock<H1Connection>>();
  /** Free connections, the most recently used last. */
  private readonly idle: H1Connection[] = [];
  private readonly queue: Queued[] = [];
  private queueHead = 0;
  /** Connections open or opening. */
  private count = 0;
  private readonly busy = new Set<H1Connection>();
  private readonly connecting = new Set<Connecting>();
  private closing = false;
  private closedWaiters: (() => void)[] = [];
  /** The last TLS session, to resume on the next connection (as undici's connector caches them). */
  private session: Buffer | undefined = undefined;

  constructor(options: H1PoolOptions) {
    this.o = options;
    const url = new URL(options.origin);
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    this.headerClock = new Clock(options.headersTimeout, headerExpired, true);
    this.bodyClock = new Clock(options.bodyTimeout, bodyExpired, true);
    this.connectClock = new Clock(options.connectTimeout, connectExpired, true);
  }

  get closed(): boolean {
    return this.closing;
  }

  /** undici's dispatch: starts `req` now, on a new connection, or when one is free. */
  dispatch(req: H1Request, handler: H1Handler): boolean {
    if (this.closing) {
      handler.onError(new H1Error('H1_POOL_CLOSED', 'the upstream pool is closed'));
      return false;
    }
    const head: BuiltHead = { text: '', length: BODY_NONE };
    const body = req.body;
    try {
      buildHead(req.method, req.path, req.headers, body === null ? BODY_NONE : Buffer.isBuffer(body) ? body.length : 'stream', req.upgrade, req.checkHead === true, head);
    } catch (err) {
      // Nothing was sent, no connection taken: as undici's UND_ERR_INVALID_ARG.
      handler.onError(err as Error);
      return false;
    }
    const c = this.takeIdle();
    if (c !== null) {
      if (!c.start(req, head, handler)) this.released(c);
      else this.busy.add(c);
      return true;
    }
    const job = { req, head, handler };
    if (this.count < this.o.maxConnections) this.open(job);
    else this.queue.push(job);
    return true;
  }

  /** A free connection that is still open (one the upstream closed while idle is dropped). */
  private takeIdle(): H1Connection | null {
    const idle = this.idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      c.idleIndex = -1;
      if (c.clock !== null) c.clock.disarm(c);
      if (c.reusable) return c;
      c.destroy();
    }
    return null;
  }

  private open(job: Queued | null): void {
    this.count++;
    const o = this.o;
    let socket: PendingSocket;
    if (o.tls === undefined) {
      socket = netConnect({ host: this.host, port: this.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
      socket.once('connect', onConnected);
    } else {
      socket = tlsConnect({ ...o.tls, host: this.host, port: this.port, session: this.session, ALPNProtocols: ['http/1.1'] });
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      socket.once('secureConnect', onConnected);
      // Session tickets may come after the handshake; the newest is offered on the next connection.
      socket.on('session', (session: Buffer) => (this.session = session));
    }
    const pending = new Connecting(this, socket, job);
    socket[kConnecting] = pending;
    this.connecting.add(pending);
    socket.on('error', onConnectError);
    this.connectClock.arm(pending);
  }

  /** A socket connected (TLS: the handshake is done): a connection now, with its first request. */
  connected(p: Connecting): void {
    this.connectClock.disarm(p);
    this.connecting.delete(p);
    const socket = p.socket;
    socket.off('error', onConnectError);
    socket[kConnecting] = undefined;
    guardWrites(socket);
    const c = new H1Connection(socket, this);
    c.ready = true;
    const job = p.job;
    if (job !== null && c.start(job.req, job.head, job.handler)) this.busy.add(c);
    else this.released(c);
  }

  /** The connection attempt failed (refused, unreachable, TLS, timeout): its request fails with it. */
  connectFailed(p: Connecting, err: Error): void {
    if (!this.connecting.delete(p)) return;
    this.connectClock.disarm(p);
    this.count--;
    p.socket.off('error', onConnectError);
    p.socket.on('error', ignore);
    p.socket[kConnecting] = undefined;
    p.socket.destroy();
    const job = p.job;
    if (job !== null) job.handler.onError(err);
    this.more();
    this.checkClosed();
  }

  private nextJob(): Queued | null {
    if (this.queueHead >= this.queue.length) return null;
    const job = this.queue[this.queueHead]!;
    this.queue[this.queueHead++] = undefined as unknown as Queued;
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    return job;
  }

  /** Queued requests get new connections while the limit allows (also while closing: they were accepted). */
  private more(): void {
    while (this.queueHead < this.queue.length && this.count < this.o.maxConnections) this.open(this.nextJob());
  }

  // ConnectionOwner

  released(c: H1Connection): void {
    this.busy.delete(c);
    if (!c.reusable) {
      c.destroy();
      return;
    }
    for (let job = this.nextJob(); job !== null; job = this.nextJob()) {
      if (c.start(job.req, job.head, job.handler)) {
        this.busy.add(c);
        return;
      }
    }
    if (this.closing) {
      c.destroy();
      return;
    }
    c.idleIndex = this.idle.length;
    this.idle.push(c);
    this.idleClock(c.idleMs).arm(c);
  }

  removed(c: H1Connection): void {
    this.busy.delete(c);
    if (c.idleIndex >= 0) {
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
      c.idleIndex = -1;
    }
    this.count--;
    this.more();
    this.checkClosed();
  }

  idleMs(hintSeconds: number): number {
    const ms = this.o.keepAliveTimeout;
    return hintSeconds < 0 ? ms : Math.min(ms, hintSeconds * 1000 - KEEP_ALIVE_MARGIN_MS);
  }

  idleClock(ms: number): Clock<H1Connection> {
    let clock = this.idleClocks.get(ms);
    if (clock === undefined) this.idleClocks.set(ms, (clock = new Clock(ms, idleExpired, false)));
    return clock;
  }

  // lifecycle

  /** Graceful: requests running and queued finish, then every connection closes. */
  close(): Promise<void> {
    this.closing = true;
    for (const c of this.idle.splice(0)) {
      c.idleIndex = -1;
      c.destroy();
    }
    return this.whenClosed();
  }

  /** At once: every request fails, every connection closes. */
  destroy(): Promise<void> {
    this.closing = true;
    const err = new H1Error('H1_POOL_CLOSED', 'the upstream pool was destroyed');
    for (let job = this.nextJob(); job !== null; job = this.nextJob()) job.handler.onError(err);
    for (const p of [...this.connecting]) this.connectFailed(p, err);
    for (const c of [...this.busy]) c.fail(err);
    for (const c of this.idle.splice(0)) {
      c.idleIndex = -1;
      c.destroy();
    }
    return this.whenClosed();
  }

  private whenClosed(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  private checkClosed(): void {
    if (!this.closing || this.count !== 0) return;
    for (const w of this.closedWaiters.splice(0)) w();
  }
}

function onConnected(this: PendingSocket): void {
  const p = this[kConnecting];
  if (p !== undefined) p.pool.connected(p);
}

function onConnectError(this: PendingSocket, err: Error): void {
  const p = this[kConnecting];
  if (p !== undefined) p.pool.connectFailed(p, err);
}

function connectExpired(p: Connecting): void {
  p.pool.connectFailed(p, new H1Error('H1_CONNECT_TIMEOUT', 'connecting to the upstream server timed out'));
}

function headerExpired(c: H1Connection): void {
  c.headerTimedOut();
}

function bodyExpired(c: H1Connection): void {
  c.bodyTimedOut();
}

function idleExpired(c: H1Connection): void {
  c.idleTimedOut();
}

function ignore(): void {}
