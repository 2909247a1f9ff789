// `mirror:` — copies a share of a route's requests to a shadow upstream and throws the answer
// away. The copy never delays, fails or changes the client's response: it is sent only after the
// main request went to the proxy stage, its body is a copy of the bytes the proxy stage reads
// (tapped off the same stream, never pausing it), it goes through the shadow cluster's own pool,
// and its errors end here. Memory is bounded: at most max_concurrent copies in flight per route,
// each holding at most max_body bytes; beyond that copies are dropped and counted.
import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { MirrorAction } from '../../config/types.js';
import type { ProxiedRequest, RequestMirror } from '../../pipeline/types.js';
import type { RouteRequest } from '../../router/request.js';
import type { Cluster } from '../../upstream/cluster.js';

/** Fields of the upstream head not copied: framing (undici sets it for the buffered body), Expect and hop-by-hop. */
const SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect']);

export interface MirrorStats {
  /** Copies sent. */
  sent: number;
  /** Copies whose shadow answered (any status), body read and discarded. */
  completed: number;
  /** Copies that failed (connect error, reset, timeout): nothing else happens. */
  failed: number;
  /** Copies not made: max_concurrent reached, or the body was larger than max_body. */
  dropped: number;
}

export class Mirror implements RequestMirror {
  readonly stats: MirrorStats = { sent: 0, completed: 0, failed: 0, dropped: 0 };
  /** Copies holding a slot: collecting a body or in flight. */
  inflight = 0;
  private credit = 0;

  constructor(
    readonly action: MirrorAction,
    readonly cluster: Cluster,
  ) {}

  /** Whether this request is in the mirrored share: an even spread, e.g. 25% is every 4th. */
  private selected(): boolean {
    this.credit += this.action.percent;
    if (this.credit < 100) return false;
    this.credit -= 100;
    return true;
  }

  send(ctx: ProxiedRequest, rr: RouteRequest, target: string, hasBody: boolean): void {
    if (this.action.percent <= 0 || !this.selected()) return;
    try {
      this.start(ctx, rr, target, hasBody);
    } catch {
      // The handler's catch would answer 500 while the main request is in flight: a copy's own
      // failure must end here, whatever threw.
      this.stats.failed++;
    }
  }

  private start(ctx: ProxiedRequest, rr: RouteRequest, target: string, hasBody: boolean): void {
    if (this.inflight >= this.action.max_concurrent) {
      this.stats.dropped++;
      return;
    }
    const headers = copyHeaders(ctx.upstreamHead());
    const method = rr.method as Dispatcher.HttpMethod;
    if (!hasBody) {
      this.inflight++;
      this.dispatch(method, target, headers, null);
      return;
    }
    const length = ctx.req.headers['content-length'];
    if (length !== undefined && Number(length) > this.action.max_body) {
      this.stats.dropped++;
      return;
    }
    this.inflight++;
    new BodyTap(this, ctx.req, method, target, headers);
  }

  /** Sends one copy; the slot was taken by the caller and is released here. */
  dispatch(method: Dispatcher.HttpMethod, path: string, headers: string[], body: Buffer | null): void {
    const endpoint = this.cluster.pick({ attempt: 0 });
    if (endpoint === undefined) {
      this.release(false);
      return;
    }
    // The shadow's own Host when its upstream says host_header: upstream.
    const host = this.cluster.hostFor(endpoint);
    if (host !== undefined) {
      const i = headers.indexOf('host');
      if (i >= 0 && i % 2 === 0) headers[i + 1] = host;
    }
    this.stats.sent++;
    endpoint.pool
      .request({ method, path, headers, body, signal: AbortSignal.timeout(this.action.timeout) })
      .then(
        (res) => res.body.dump().then(
          () => this.release(true),
          () => this.release(false),
        ),
        () => this.release(false),
      );
  }

  release(ok: boolean | undefined): void {
    this.inflight--;
    if (ok === true) this.stats.completed++;
    else if (ok === false) this.stats.failed++;
    else this.stats.dropped++;
  }
}

/** The main request's upstream head without the fields undici sets for a buffered body. */
function copyHeaders(head: string[]): string[] {
  let w = 0;
  for (let i = 0; i < head.length; i += 2) {
    if (SKIP.has(head[i]!.toLowerCase())) continue;
    head[w] = head[i]!;
    head[w + 1] = head[i + 1]!;
    w += 2;
  }
  head.length = w;
  return head;
}

/**
 * Copies the request body as the proxy stage reads it. A 'data' listener on a stream nobody
 * reads yet would start it flowing before the proxy stage listens, so such a stream is paused
 * first: undici resumes it once it attached its own listener.
 */
class BodyTap {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(
    private readonly mirror: Mirror,
    private readonly req: IncomingMessage,
    private readonly method: Dispatcher.HttpMethod,
    private readonly path: string,
    private readonly headers: string[],
  ) {
    if (req.readableFlowing === null) req.pause();
    req.on('data', this.onData);
    req.once('end', this.onEnd);
    req.once('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.size += chunk.length;
    if (this.size > this.mirror.action.max_body) return this.abandon(undefined);
    this.chunks.push(chunk);
  };

  private readonly onEnd = (): void => {
    if (this.done) return;
    // node:http dumps a body nobody read once the response is sent (the main upstream failed
    // before reading it): it removes every 'data' listener, this one too, and the stream still
    // ends. What was collected is then only a part of the body: never send that as the copy.
    if (this.req.listenerCount('data', this.onData) === 0) return this.abandon(undefined);
    this.detach();
    const body = Buffer.concat(this.chunks);
    this.chunks = [];
    this.mirror.dispatch(this.method, this.path, this.headers, body);
  };

  private readonly onClose = (): void => {
    // Closed before the body ended: the client went away; there is nothing whole to copy.
    if (!this.done) this.abandon(undefined);
  };

  private abandon(ok: boolean | undefined): void {
    this.detach();
    this.chunks = [];
    this.mirror.release(ok);
  }

  private detach(): void {
    this.done = true;
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('close', this.onClose);
  }
}
