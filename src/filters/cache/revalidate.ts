// Background revalidation for stale-while-revalidate (RFC 5861 §3): the stale response has
// answered its client; this fetch, with no client waiting, asks the upstream with the stored
// validators and updates the store. One per stored variant at a time (busy()). The upstream
// head is the route's own, copied at upstream_request of the request that served the stale
// response (forwarding fields, rewrites and header rules applied), sent through the cluster
// that upstream_peer chose, as the mirror sends its copies.
//
//   304         the stored fields and freshness are updated (§4.3.4), as a foreground 304 does
//   200 storable   stored as the upstream sent it (read whole, up to max_object_size); on a route
//               whose responses go through a body transform (compression) the stale entry is
//               dropped instead, so that the next request fills it through the transform
//   other, error   the stale entry stays (stale-if-error and the next revalidation still have it)
import type { Dispatcher } from 'undici';
import { ageValue, httpDate, initialAge, notStorable } from '../../cache/freshness.js';
import { NO_DIRECTIVES } from '../../cache/cache-control.js';
import { sizeOf, type CacheStore, type StoredResponse } from '../../cache/store.js';
import type { DiskStore } from '../../cache/disk.js';
import { normaliseField } from '../../cache/vary.js';
import type { RequestContext, UpstreamRequestHead } from '../../pipeline/types.js';
import type { Cluster } from '../../upstream/cluster.js';
import { first, flatHeaders, joined, nameList, removeFields } from '../../util/fields.js';
import type { Directives } from '../../cache/cache-control.js';
import type { CacheRoute } from './config.js';

/** What the revalidator needs of the route's cache filter (index.ts). */
export interface RevalidationHost {
  readonly config: CacheRoute;
  readonly hiddenFields: ReadonlySet<string>;
  control(h: readonly string[]): { control: string | undefined; directives: Readonly<Directives>; targeted: boolean };
  lifetime(status: number, d: Readonly<Directives>, targeted: boolean, h: readonly string[], date: number, t: number): number;
  tagsOf(h: readonly string[]): string[];
  updated(key: string, e: StoredResponse, h: readonly string[], requestTime: number, t: number, requestId: string): string[];
}

/** Not copied onto the background request: framing and hop-by-hop fields, and the client's own conditionals. */
const SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);
/** Not stored from a background 200 (as the foreground's NOT_STORED, plus what undici reports of the framing). */
const NOT_STORED = new Set(['age', 'cache-status', 'set-cookie', 'connection', 'keep-alive', 'transfer-encoding']);
/** How long a background revalidation may take before it is given up (the stale entry stays). */
const TIMEOUT_MS = 30_000;

export class Revalidator {
  private readonly inflight = new Set<StoredResponse>();
  /** For tests and metrics. */
  readonly stats = { started: 0, refreshed: 0, replaced: 0, dropped: 0, failed: 0 };

  constructor(
    private readonly cache: RevalidationHost,
    private readonly store: CacheStore,
    private readonly disk: DiskStore | undefined,
    private readonly clusters: ReadonlyMap<string, Cluster>,
  ) {}

  /** A background revalidation of `r` is in flight. */
  busy(r: StoredResponse): boolean {
    return this.inflight.has(r);
  }

  /** Starts the background revalidation of `r` from the head the route built for `ctx`. Never throws. */
  start(ctx: RequestContext, key: string, secondary: string, r: StoredResponse, head: UpstreamRequestHead): void {
    const cluster = ctx.route?.cluster ?? (ctx.upstream.name === undefined ? undefined : this.clusters.get(ctx.upstream.name));
    const endpoint = cluster?.pick({ attempt: 0 });
    if (cluster === undefined || endpoint === undefined) return;
    const headers = head.headers.slice();
    removeFields(headers, SKIP);
    if (r.upstreamEtag !== undefined) headers.push('if-none-match', r.upstreamEtag);
    if (r.lastModified !== undefined) headers.push('if-modified-since', r.lastModified);
    const host = cluster.hostFor(endpoint);
    if (host !== undefined) {
      const i = headers.findIndex((v, j) => j % 2 === 0 && v.toLowerCase() === 'host');
      if (i >= 0) headers[i + 1] = host;
    }
    // What storing a new response needs of the request, read now (the request is over by then).
    const request = ctx.headers.slice();
    const facts = { requestId: ctx.requestId, authorization: ctx.header('authorization') !== undefined, transformed: (ctx.route?.phases.responseBody.length ?? 0) > 1 };
    const requestTime = Date.now() / 1000;
    this.inflight.add(r);
    this.stats.started++;
    endpoint.pool
      .request({ method: 'GET', path: head.target, headers, signal: AbortSignal.timeout(TIMEOUT_MS) })
      .then((res) => this.answered(key, secondary, r, res, requestTime, request, facts))
      .catch(() => void this.stats.failed++)
      .finally(() => this.inflight.delete(r));
  }

  private async answered(
    key: string,
    secondary: string,
    r: StoredResponse,
    res: Dispatcher.ResponseData,
    requestTime: number,
    request: readonly string[],
    facts: { requestId: string; authorization: boolean; transformed: boolean },
  ): Promise<void> {
    const t = Date.now() / 1000;
    const h = flatHeaders(res.headers);
    if (res.statusCode === 304) {
      await res.body.dump();
      this.cache.updated(key, r, h, requestTime, t, facts.requestId);
      this.stats.refreshed++;
      return;
    }
    if (res.statusCode >= 500 || res.statusCode < 200) {
      await res.body.dump();
      this.stats.failed++;
      return;
    }
    const { control, directives, targeted } = this.cache.control(h);
    const vary = nameList(joined(h, 'vary'));
    let why = notStorable({ method: 'GET', status: res.statusCode, response: directives, request: NO_DIRECTIVES, authorization: facts.authorization, hasExpires: !targeted && first(h, 'expires') !== undefined, varyStar: vary.includes('*') });
    if (why === undefined && this.cache.config.set_cookie === 'pass' && first(h, 'set-cookie') !== undefined) why = 'set-cookie';
    const cl = first(h, 'content-length');
    if (why === undefined && cl !== undefined && Number(cl) > this.store.maxObjectSize) why = 'too large';
    if (why !== undefined || facts.transformed) {
      // A new answer that cannot replace the stale one here: the stale one goes, the next request fills.
      await res.body.dump();
      this.store.remove(key, r);
      this.stats.dropped++;
      return;
    }
    const body = await readBounded(res.body, this.store.maxObjectSize);
    if (body === undefined) {
      this.store.remove(key, r);
      this.stats.dropped++;
      return;
    }
    const headers: string[] = [];
    const hidden = this.cache.hiddenFields;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!.toLowerCase();
      if (NOT_STORED.has(name) || hidden.has(name) || h[i + 1] === facts.requestId) continue;
      headers.push(h[i]!, h[i + 1]!);
    }
    if (first(headers, 'date') === undefined) headers.push('date', new Date(t * 1000).toUTCString());
    const dateField = first(headers, 'date');
    const date = httpDate(dateField);
    const etag = first(headers, 'etag');
    const fresh: StoredResponse = {
      status: res.statusCode,
      headers,
      body,
      length: body.length,
      file: undefined,
      varyNames: vary,
      varyValues: vary.map((n) => normaliseField(n, joined(request, n))),
      secondary,
      responseTime: t,
      initialAge: initialAge({ requestTime, responseTime: t, date, age: ageValue(first(h, 'age')) }),
      lifetime: this.cache.lifetime(res.statusCode, directives, targeted, headers, date, t),
      directives,
      control,
      targeted,
      tags: this.cache.tagsOf(h),
      etag,
      upstreamEtag: etag,
      lastModified: first(headers, 'last-modified'),
      date: dateField,
      size: 0,
    };
    if (this.disk === undefined) {
      fresh.size = sizeOf(fresh);
      this.store.put(key, fresh, this.cache.config.max_variants);
      this.store.l2?.write(key, fresh, Date.now() / 1000, this.cache.config.stale_if_error);
    } else {
      const w = this.disk.writer();
      w.write(body, () => {});
      fresh.body = Buffer.alloc(0);
      fresh.file = { path: this.disk.fileFor(key), digest: w.digest(), trailer: 0 };
      if (!(await this.disk.commit(key, fresh, w, this.cache.config.max_variants))) return void this.stats.failed++;
    }
    // The stale one, when the new one is another variant (its Vary changed).
    if (this.store.get(key)?.list.includes(r) === true) this.store.remove(key, r);
    this.stats.replaced++;
  }
}

async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}
