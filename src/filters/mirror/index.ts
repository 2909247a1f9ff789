// `mirror:` — copies a share of a route's requests to a shadow upstream and throws the answer
// away. The copy never delays, fails or changes the client's response: it is sent only after the
// main request went to the proxy stage, its body is a copy of the bytes the proxy stage reads
// (tapped off the same stream, never pausing it), it goes through the shadow cluster's own pool,
// and its errors end here. Memory is bounded: at most max_concurrent copies in flight per route,
// each holding at most max_body bytes; beyond that copies are dropped and counted.
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../../config/types.js';
import type { MirrorAction } from './config.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import type { BodyObserver, Filter, RequestContext, UpstreamRequestHead } from '../../pipeline/types.js';
import type { Cluster } from '../../upstream/cluster.js';
import { removeFields } from '../../util/fields.js';

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

/** The route's last upstream_request filter: it copies the head as the route sends it. */
export class Mirror implements Filter {
  readonly name = 'mirror';
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

  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): void {
    if (ctx.explaining || this.action.percent <= 0 || !this.selected()) return;
    try {
      this.start(ctx, head);
    } catch {
      // The handler's catch would answer 500 while the main request is in flight: a copy's own
      // failure must end here, whatever threw.
      this.stats.failed++;
    }
  }

  explain(): string {
    return `mirror (${this.action.percent}% to ${this.action.upstream}, response discarded)`;
  }

  private start(ctx: RequestContext, head: UpstreamRequestHead): void {
    if (this.inflight >= this.action.max_concurrent) {
      this.stats.dropped++;
      return;
    }
    // The head as the route sends it (forwarding headers included, so a client cannot forge
    // X-Forwarded-For to the shadow either), before any upstream's host_header: upstream.
    const headers = copyHeaders(head.headers.slice());
    const method = head.method as Dispatcher.HttpMethod;
    const length = ctx.header('content-length');
    if (length !== undefined && Number(length) > this.action.max_body) {
      this.stats.dropped++;
      return;
    }
    this.inflight++;
    const copy = new BodyCopy(this, method, head.target, headers);
    if (!ctx.observeRequestBody(copy)) this.dispatch(method, head.target, headers, null);
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
  removeFields(head, SKIP);
  return head;
}

/** Collects the request body as the proxy stage reads it, then sends the copy. */
class BodyCopy implements BodyObserver {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(
    private readonly mirror: Mirror,
    private readonly method: Dispatcher.HttpMethod,
    private readonly path: string,
    private readonly headers: string[],
  ) {}

  data(chunk: Buffer): void {
    if (this.done) return;
    this.size += chunk.length;
    if (this.size > this.mirror.action.max_body) {
      this.done = true;
      this.chunks = [];
      this.mirror.release(undefined);
      return;
    }
    this.chunks.push(chunk);
  }

  end(complete: boolean): void {
    if (this.done) return;
    this.done = true;
    const chunks = this.chunks;
    this.chunks = [];
    // A body that did not pass whole (client gone, never read) is never sent as the copy.
    if (!complete) return this.mirror.release(undefined);
    this.mirror.dispatch(this.method, this.path, this.headers, Buffer.concat(chunks));
  }
}

export const mirror: RouteFilterDefinition = {
  name: 'mirror',
  create: (rc: RouteConfig, deps) => (rc.mirror === undefined ? undefined : new Mirror(rc.mirror, deps.clusters.get(rc.mirror.upstream)!)),
};
