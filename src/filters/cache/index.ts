// `cache:` — an RFC 9111 shared cache for a route. The request phase looks the request up (a
// usable stored response is answered as a local reply, built from the stored fields and body,
// with Age and Cache-Status); a stale one is revalidated (upstream_request adds its validators,
// and the upstream's 304 updates the stored fields, §3.2/§4.3.4, and is answered from the
// store); upstream_response decides whether the response may be stored (§3), and
// response_body copies it into the store as it streams to the client — the client's first byte
// never waits for the last, and a copy that outgrows max_object_size is dropped. Unsafe
// methods invalidate (§4.4). Concurrent misses for one key collapse onto one upstream request
// (the others wait, bounded, and a response that is not storable releases them at once; a
// storable one of known length is streamed to them as it grows, src/cache/growing.ts).
// A route without `cache` gets no filter and pays nothing.
import type { Transform } from 'node:stream';
import { DiskTee, StoredBody, Tee } from './bodies.js';
import { parseCacheControl, NO_DIRECTIVES, type Directives } from '../../cache/cache-control.js';
import { notModified, notModifiedHeaders } from '../../cache/conditional.js';
import { first, joined, nameList, removeFields } from '../../util/fields.js';
import { ageValue, freshnessLifetime, httpDate, initialAge, notStorable } from '../../cache/freshness.js';
import { sameVariant, sizeOf, type CacheStore, type Fill, type StoredResponse } from '../../cache/store.js';
import type { CacheStores } from '../../cache/registry.js';
import { DiskStore, type BodyWriter, type FileBody } from '../../cache/disk.js';
import { GrowingBody } from '../../cache/growing.js';
import { byteRange, ifRangeHolds } from '../../cache/range.js';
import { normaliseField } from '../../cache/vary.js';
import { targetedControl } from '../../cache/targeted.js';
import type { RouteConfig } from '../../config/types.js';
import type { ReasonCode } from '../../errors/index.js';
import type { RouteFilterDefinition } from '../../pipeline/registry.js';
import { stateKey, type Filter, type LocalResponse, type RequestContext, type ResponseHead, type UpstreamRequestHead } from '../../pipeline/types.js';
import type { RouteRequest } from '../../router/request.js';
import type { CacheRoute } from './config.js';
import { AccessList } from '../access/matcher.js';
import type { Cluster } from '../../upstream/cluster.js';
import { Revalidator } from './revalidate.js';
import { headProblem, localReplyFor, wantsJson } from '../../proxy/local-reply.js';

type Fwd = 'uri-miss' | 'vary-miss' | 'stale' | 'request' | 'bypass';

/** What the response side needs to store a response. */
interface Pending {
  status: number;
  /** The upstream's fields as received (before the response hooks). */
  upstream: string[];
  directives: Readonly<Directives>;
  /** The directives' source, and whether it was a targeted field (RFC 9213: Expires is ignored then). */
  control: string | undefined;
  targeted: boolean;
  varyNames: string[];
  requestTime: number;
  responseTime: number;
  /** The fields to store, fixed in the response phase (compression's edits to the representation included). */
  headers: string[] | undefined;
  contentLength: number;
}

interface CacheState {
  readonly key: string;
  readonly secondary: string;
  fwd: Fwd;
  /** A stale stored response being revalidated. */
  entry: StoredResponse | undefined;
  /** The stale stored response that may answer if the upstream fails (stale-if-error). */
  stale: StoredResponse | undefined;
  requestTime: number;
  /** This request leads a fill that others wait for. */
  fill: Fill | undefined;
  invalidate: boolean;
  pending: Pending | undefined;
  /** A 304 refreshed this stored response: the client gets its body. */
  refreshed: StoredResponse | undefined;
  /** Why the response was not stored (Cache-Status detail). */
  detail: string | undefined;
  /** A disk store's file is being finished: the fill is released when it is indexed, not at done. */
  committing: boolean;
  /** The fill's key (the key, or the key and the request's variant). */
  fillKey: string;
  /** Within stale-while-revalidate: answered at upstream_request, after starting the background revalidation. */
  swr: { r: StoredResponse; age: number } | undefined;
  /** The response being stored, made before its body is whole when collapsed requests stream it (Fill.growing). */
  built: StoredResponse | undefined;
}

const kState = stateKey<CacheState>('cache');
/** A disk hit's file body, closed at done if it was never sent. */
const kBody = stateKey<FileBody>('cache-body');
const EMPTY = Buffer.alloc(0);

const CONDITIONALS = new Set(['if-none-match', 'if-modified-since']);
/** Fields never stored: recomputed per hit (Age), or per request. */
const NOT_STORED = new Set(['age', 'cache-status', 'set-cookie', 'connection', 'keep-alive', 'transfer-encoding']);
/** The representation fields compression may change: stored as they went downstream. */
const REPRESENTATION = new Set(['content-encoding', 'content-length', 'etag', 'vary']);
/** Fields a 304 does not update (§3.2): the length and coding belong to the stored body. */
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'age', 'cache-status', 'set-cookie', 'vary']);

function now(): number {
  return Date.now() / 1000;
}

function requestDirectives(ctx: RequestContext): Readonly<Directives> {
  const cc = ctx.header('cache-control');
  if (cc !== undefined) return parseCacheControl(cc);
  // §5.4: Pragma: no-cache counts only without Cache-Control.
  const pragma = ctx.header('pragma');
  if (pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)) return { ...NO_DIRECTIVES, noCache: true };
  return NO_DIRECTIVES;
}

/** Whether `r` may answer now: fresh, or stale within what the client allows (§4.2, §5.2.1). */
function usable(r: StoredResponse, age: number, req: Readonly<Directives>): boolean {
  const d = r.directives;
  if (req.noCache || d.noCache) return false;
  if (req.maxAge !== undefined && !(age <= req.maxAge)) return false;
  if (r.lifetime > age) return req.minFresh === undefined || r.lifetime - age >= req.minFresh;
  // §4.2.4: stale only when the client allows it and the response does not forbid it (s-maxage implies proxy-revalidate).
  if (req.maxStale === undefined || d.mustRevalidate || d.proxyRevalidate || d.sMaxage !== undefined) return false;
  return age - r.lifetime <= req.maxStale;
}

/** RFC 5861 §3: stale, but within the response's stale-while-revalidate, and the client does not insist. */
function withinStaleWhileRevalidate(r: StoredResponse, age: number, req: Readonly<Directives>): boolean {
  const d = r.directives;
  const swr = d.staleWhileRevalidate;
  if (swr === undefined || Number.isNaN(swr) || d.mustRevalidate || d.proxyRevalidate || d.noCache || req.noCache || req.maxAge !== undefined || req.minFresh !== undefined) return false;
  return age - r.lifetime <= swr;
}

/** The stored fields as a hit sends them: without the framing fields (the exchange sets the length), or null when node would refuse one. */
function wireFields(h: readonly string[]): string[] | null {
  const out: string[] = [];
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!.toLowerCase();
    if (n !== 'content-length' && n !== 'transfer-encoding') out.push(h[i]!, h[i + 1]!);
  }
  return headProblem(out) === undefined ? out : null;
}

export class Cache implements Filter {
  readonly name = 'cache';
  private readonly ignoreQuery: ReadonlySet<string>;

  /** The store, when it is a disk store (bodies in files). */
  private readonly disk: DiskStore | undefined;
  /** The purge-tag fields (lower case): read into StoredResponse.tags, never stored or sent downstream. */
  private readonly tagFields: ReadonlySet<string>;
  /** Fields neither stored nor sent downstream: the tag fields, and the targeted fields but a forwarded CDN-Cache-Control. */
  readonly hiddenFields: ReadonlySet<string>;
  /** stale-while-revalidate's background fetches (revalidate.ts). */
  readonly revalidator: Revalidator;
  /** Who may PURGE on this route (undefined: PURGE is proxied). */
  private readonly purgeList: AccessList | undefined;

  constructor(
    readonly config: CacheRoute,
    private readonly store: CacheStore,
    clusters: ReadonlyMap<string, Cluster> = new Map(),
    private readonly caches?: CacheStores,
  ) {
    this.ignoreQuery = new Set(config.key.ignore_query);
    this.disk = store instanceof DiskStore ? store : undefined;
    this.tagFields = new Set(config.tag_fields);
    this.hiddenFields = new Set([...config.tag_fields, ...config.targeted_fields.filter((f) => !(f === 'cdn-cache-control' && config.forward_cdn_cache_control))]);
    this.purgeList = config.purge === undefined ? undefined : new AccessList(config.purge);
    this.revalidator = new Revalidator(this, store, this.disk, clusters);
  }

  /** The primary key: scheme, host (and a port that is not the scheme's default), normalised path and query. */
  keyOf(rr: RouteRequest): string {
    const p = rr.port;
    const port = p === '' || (p === '80' && rr.scheme === 'http') || (p === '443' && rr.scheme === 'https') ? '' : `:${p}`;
    let q = rr.query;
    if (q !== '' && this.ignoreQuery.size > 0) {
      q = q
        .split('&')
        .filter((pair) => {
          const eq = pair.indexOf('=');
          return !this.ignoreQuery.has(eq < 0 ? pair : pair.slice(0, eq));
        })
        .join('&');
    }
    return q === '' ? `${rr.scheme}://${rr.host}${port}${rr.path}` : `${rr.scheme}://${rr.host}${port}${rr.path}?${q}`;
  }

  /** The configured extra key parts (headers, cookies), matched like Vary. */
  private secondaryOf(ctx: RequestContext): string {
    const k = this.config.key;
    if (k.headers.length === 0 && k.cookies.length === 0) return '';
    const parts: string[] = [];
    for (const h of k.headers) parts.push(`h:${ctx.header(h) ?? ''}`);
    for (const c of k.cookies) parts.push(`c:${ctx.request!.cookie(c) ?? ''}`);
    return parts.join('\n');
  }

  request(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    if (ctx.explaining || ctx.upgrade !== undefined) return undefined;
    const method = ctx.method;
    if (method === 'PURGE' && this.purgeList !== undefined) return this.purge(ctx);
    if (method !== 'GET' && method !== 'HEAD') {
      // §4.4: an unsafe method invalidates what is stored for its URI once it succeeds.
      if (method !== 'OPTIONS' && method !== 'TRACE') ctx.set(kState, this.state(this.keyOf(ctx.request!), '', 'bypass', true));
      return undefined;
    }
    if (this.config.bypass !== undefined) {
      const why = this.bypassed(ctx);
      if (why !== undefined) {
        const s = this.state(this.keyOf(ctx.request!), '', 'bypass', false);
        s.detail = why;
        ctx.set(kState, s);
        return undefined;
      }
    }
    return this.lookup(ctx, this.keyOf(ctx.request!), this.secondaryOf(ctx), requestDirectives(ctx), false);
  }

  /** The bypass condition this request meets ("cookie session"), or undefined. A value of "" or "0" does not count (as nginx's proxy_cache_bypass). */
  bypassed(ctx: RequestContext): string | undefined {
    const b = this.config.bypass!;
    const on = (v: string | undefined) => v !== undefined && v !== '' && v !== '0';
    for (const h of b.headers) if (on(ctx.header(h))) return `header ${h}`;
    const rr = ctx.request!;
    for (const c of b.cookies) if (on(rr.cookie(c))) return `cookie ${c}`;
    for (const q of b.query) if (on(rr.queryParam(q))) return `query ${q}`;
    return undefined;
  }

  /** What `usher explain` says of this request: the store, the key, and whether it would be looked up. */
  explainRequest(ctx: RequestContext): { store: string; type: string; key: string; secondary: string | null; lookup: boolean; why: string } {
    const rr = ctx.request!;
    const key = this.keyOf(rr);
    const k = this.config.key;
    const secondary = k.headers.length === 0 && k.cookies.length === 0 ? null : this.secondaryOf(ctx).replace(/\n/g, '; ');
    const base = { store: this.config.store, type: this.store.l2 === undefined ? this.store.kind : `${this.store.kind} + l2 in Redis`, key, secondary };
    const m = ctx.method;
    if (ctx.upgrade !== undefined) return { ...base, lookup: false, why: 'an upgrade is never cached' };
    if (m === 'PURGE' && this.purgeList !== undefined) {
      const d = this.purgeList.decide(ctx.clientAddress);
      return { ...base, lookup: false, why: d.allow ? `PURGE: removes every variant of the key (${d.rule})` : `PURGE refused: 403 access_denied (${d.rule})` };
    }
    if (m !== 'GET' && m !== 'HEAD') return { ...base, lookup: false, why: m === 'OPTIONS' || m === 'TRACE' ? `${m} is not cached` : `${m} is unsafe: a 2xx/3xx answer invalidates the key (RFC 9111 §4.4)` };
    const why = this.config.bypass === undefined ? undefined : this.bypassed(ctx);
    if (why !== undefined) return { ...base, lookup: false, why: `bypass (${why}): straight upstream, not stored` };
    if (m === 'HEAD') return { ...base, lookup: true, why: 'looked up (answered from a stored GET); a miss is forwarded and not stored' };
    if (ctx.header('range') !== undefined) return { ...base, lookup: true, why: 'looked up (a range of a stored 200); a miss is forwarded and not stored' };
    return { ...base, lookup: true, why: 'looked up; a miss is fetched and stored if the response may be' };
  }

  /**
   * PURGE from an allowed client: every variant of the request's key leaves the route's store —
   * in a worker process, the store of that name in every worker (`missed_workers`: those that
   * did not answer in time).
   */
  private purge(ctx: RequestContext): LocalResponse | Promise<LocalResponse> {
    if (!this.purgeList!.decide(ctx.clientAddress).allow) return { ...localReplyFor('access_denied', ctx.requestId, wantsJson(ctx.headers)), reason: 'access_denied' };
    const p = { url: this.keyOf(ctx.request!) };
    const reply = (body: unknown): LocalResponse => ({ status: 200, headers: ['content-type', 'application/json', 'cache-control', 'no-store'], body: `${JSON.stringify(body)}\n`, reason: 'cache_purged' });
    const everywhere = this.caches?.everywhere;
    // Every other instance sharing the L2: deleted there and published, before the answer (never rejects).
    const shared = this.store.l2?.purge(p);
    const answer =
      everywhere === undefined
        ? reply({ purged: this.store.purge(p) })
        : everywhere(this.store.name, p).then(
            ({ purged, missed }) => reply(missed.length === 0 ? { purged } : { purged, missed_workers: missed }),
            // The primary is gone (this worker is draining): this worker's own store.
            () => reply({ purged: this.store.purge(p) }),
          );
    return shared === undefined ? answer : Promise.all([answer, shared]).then(([r]) => r);
  }

  private state(key: string, secondary: string, fwd: Fwd, invalidate: boolean): CacheState {
    return { key, secondary, fwd, entry: undefined, stale: undefined, requestTime: now(), fill: undefined, invalidate, pending: undefined, refreshed: undefined, detail: undefined, committing: false, fillKey: key, swr: undefined, built: undefined };
  }

  private lookup(ctx: RequestContext, key: string, secondary: string, req: Readonly<Directives>, collapsed: boolean, l2Done = false): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const t = now();
    const set = this.store.get(key);
    let fwd: Fwd = 'uri-miss';
    let stale: StoredResponse | undefined;
    if (set !== undefined) {
      const r = this.select(set.list, ctx, secondary);
      if (r === undefined) fwd = 'vary-miss';
      else {
        const age = r.initialAge + Math.max(0, t - r.responseTime);
        if (usable(r, age, req)) return r.file === undefined ? this.hit(ctx, r, age, collapsed, undefined) : this.diskHit(ctx, key, secondary, req, collapsed, r, age, undefined);
        // RFC 5861 §3: within stale-while-revalidate the stale response answers at once. The
        // first such GET of a variant starts its background revalidation: it goes on to
        // upstream_request (so the upstream head is the route's, built by the pipeline), where
        // the head is copied for the background fetch and the stale response answers.
        if (withinStaleWhileRevalidate(r, age, req)) {
          this.store.stats.stale++;
          if (ctx.method === 'GET' && !this.revalidator.busy(r) && this.store.fill(this.fillKey(key, secondary, r, ctx)) === undefined && ctx.header('range') === undefined) {
            const s = this.state(key, secondary, 'stale', false);
            s.swr = { r, age };
            ctx.set(kState, s);
            return undefined;
          }
          return r.file === undefined ? this.hit(ctx, r, age, false, 'stale-while-revalidate') : this.diskHit(ctx, key, secondary, req, false, r, age, 'stale-while-revalidate');
        }
        stale = r;
        fwd = req.noCache || req.maxAge !== undefined || req.minFresh !== undefined ? 'request' : 'stale';
      }
    }
    // Nothing of this variant in memory: the shared L2 may have it (only when configured: a store without one looks nowhere else).
    if (stale === undefined && !l2Done && this.store.l2 !== undefined) return this.l2Lookup(ctx, key, secondary, req, collapsed);
    // A miss is counted when the request goes upstream (or is refused for only-if-cached), not while it waits on a fill.
    // §5.2.1.7: nothing usable and the client will not have it fetched.
    if (req.onlyIfCached) {
      this.store.stats.misses++;
      return { status: 504, headers: ['content-type', 'text/plain; charset=utf-8', 'cache-status', `usher; fwd=${fwd}; detail="only-if-cached"`], body: '504 Gateway Timeout\nreason: cache_only_if_cached\n', reason: 'cache_only_if_cached' };
    }
    const s = this.state(key, secondary, fwd, false);
    ctx.set(kState, s);
    if (ctx.method !== 'GET' || ctx.header('range') !== undefined) {
      // HEAD and Range requests go upstream as they are; their responses are not stored.
      s.fwd = 'bypass';
      this.store.stats.misses++;
      return undefined;
    }
    s.stale = stale;
    if (stale !== undefined && (stale.upstreamEtag !== undefined || stale.lastModified !== undefined)) s.entry = stale;
    if (this.config.collapse && !req.noStore && !this.store.passing(key, t * 1000)) {
      // Per variant when the key's variants are known (another variant's fill does not hold this one up).
      s.fillKey = set === undefined || set.list.length === 0 ? key : this.fillKey(key, secondary, set.list[0]!, ctx);
      const f = this.store.fill(s.fillKey);
      // The fill's response is known and its body streaming: this request streams it too (or, another variant, goes upstream on its own).
      const g = f?.growing;
      if (g !== undefined) {
        const followed = this.follow(ctx, g, secondary, req, t);
        if (followed !== undefined) return followed;
      } else if (!collapsed) {
        if (f === undefined) s.fill = this.store.lead(s.fillKey);
        else return this.wait(ctx, key, secondary, req, f);
      }
    }
    this.store.stats.misses++;
    return undefined;
  }

  /**
   * A memory miss looked up in the L2 (at most its timeout; an error or a timeout is a miss). A
   * found variant that this request selects is kept in memory: fresh, it answers (Cache-Status
   * detail="l2"); stale, the lookup goes on with it in memory (revalidation, stale-if-error).
   */
  private async l2Lookup(ctx: RequestContext, key: string, secondary: string, req: Readonly<Directives>, collapsed: boolean): Promise<LocalResponse | undefined> {
    const r = await this.store.l2!.get(key);
    if (r !== undefined && r.body.length <= this.store.maxObjectSize && this.select([r], ctx, secondary) !== undefined && this.store.get(key)?.list.some((v) => sameVariant(v, r)) !== true) {
      this.store.put(key, r, this.config.max_variants);
      const age = r.initialAge + Math.max(0, now() - r.responseTime);
      if (usable(r, age, req)) return this.hit(ctx, r, age, collapsed, 'l2');
    }
    return this.lookup(ctx, key, secondary, req, collapsed, true);
  }

  /** The fill a request collapses onto: the key, and its values of the fields the stored variants vary on. */
  private fillKey(key: string, secondary: string, like: StoredResponse, ctx: RequestContext): string {
    if (like.varyNames.length === 0 && secondary === '') return key;
    let k = `${key}\n${secondary}`;
    for (const name of like.varyNames) k += `\n${normaliseField(name, ctx.header(name)) ?? ''}`;
    return k;
  }

  /**
   * A hit whose body is in a file: checked before the head (disk.ts); a file found truncated or
   * corrupt is removed and the request looks again (a miss, so it goes upstream).
   */
  private async diskHit(ctx: RequestContext, key: string, secondary: string, req: Readonly<Directives>, collapsed: boolean, r: StoredResponse, age: number, detail: string | undefined): Promise<LocalResponse | undefined> {
    const body = await this.disk!.body(key, r);
    if (body === undefined) return this.lookup(ctx, key, secondary, req, collapsed);
    if (!Buffer.isBuffer(body)) ctx.set(kBody, body);
    return this.hit(ctx, r, age, collapsed, detail, body, key);
  }

  /** A reply that streams the body of the fill in flight as it grows (growing.ts), when the fill's response answers this request. */
  private follow(ctx: RequestContext, g: NonNullable<Fill['growing']>, secondary: string, req: Readonly<Directives>, t: number): LocalResponse | undefined {
    const r = g.r;
    if (g.body.failed !== undefined || this.select([r], ctx, secondary) === undefined) return undefined;
    const age = r.initialAge + Math.max(0, t - r.responseTime);
    if (!usable(r, age, req)) return undefined;
    const body = g.body.reader();
    ctx.set(kBody, body);
    return this.hit(ctx, r, age, true, undefined, body);
  }

  /** Waits for the fill in flight (at most collapse_timeout), then looks again. */
  private wait(ctx: RequestContext, key: string, secondary: string, req: Readonly<Directives>, f: Fill): Promise<LocalResponse | undefined> {
    return new Promise((resolve) => {
      let woken = false;
      const wake = (): void => {
        if (woken) return;
        woken = true;
        clearTimeout(timer);
        const i = f.waiters.indexOf(wake);
        if (i >= 0) f.waiters.splice(i, 1);
        resolve(this.lookup(ctx, key, secondary, req, true) as LocalResponse | undefined);
      };
      const timer = setTimeout(wake, this.config.collapse_timeout);
      f.waiters.push(wake);
    });
  }

  private select(list: readonly StoredResponse[], ctx: RequestContext, secondary: string): StoredResponse | undefined {
    outer: for (const r of list) {
      if (r.secondary !== secondary) continue;
      for (let i = 0; i < r.varyNames.length; i++) {
        const name = r.varyNames[i]!;
        if (normaliseField(name, ctx.header(name)) !== r.varyValues[i]) continue outer;
      }
      return r;
    }
    return undefined;
  }

  /** A reply from `r`; its body is `body` (a disk store's, read and checked) or r.body. */
  private hit(ctx: RequestContext, r: StoredResponse, age: number, collapsed: boolean, detail: string | undefined, body: Buffer | FileBody = r.body, key = ''): LocalResponse {
    this.store.stats.hits++;
    // The common hit: the head made once per second of age, copied (the exchange appends to it).
    const whole = Math.floor(age);
    const ttl = Math.floor(r.lifetime - age);
    const cached = r.hitHead;
    if (cached !== undefined && cached.age === whole && cached.ttl === ttl && !collapsed && detail === undefined && ctx.header('if-none-match') === undefined && ctx.header('if-modified-since') === undefined && ctx.header('range') === undefined) {
      return { status: r.status, headers: cached.headers.slice(), body, reason: 'cache_hit', checked: true };
    }
    const status = `usher; hit; ttl=${ttl}${collapsed ? '; collapsed' : ''}${detail === undefined ? '' : `; detail="${detail}"`}`;
    const ageField = String(whole);
    if (notModified(ctx.header('if-none-match'), ctx.header('if-modified-since'), r)) {
      // The stored body goes as the length a 200 would have (RFC 9110 §8.6); node sends none with a 304.
      return { status: 304, headers: [...notModifiedHeaders(r), 'age', ageField, 'cache-status', status], body, reason: 'cache_hit' };
    }
    const range = ctx.method === 'GET' && r.status === 200 ? ctx.header('range') : undefined;
    if (range !== undefined && ifRangeHolds(ctx.header('if-range'), r.etag, r.lastModified)) {
      const length = r.length;
      const want = byteRange(range, length);
      if (want.kind === 'partial') {
        let part: Buffer | FileBody;
        if (Buffer.isBuffer(body)) part = body.subarray(want.start, want.end + 1);
        else {
          body.close();
          part = this.disk!.lazyBody(key, r, want.start, want.end);
          ctx.set(kBody, part);
        }
        return { status: 206, headers: [...r.headers, 'content-range', `bytes ${want.start}-${want.end}/${length}`, 'age', ageField, 'cache-status', status], body: part, reason: 'cache_hit' };
      }
      if (want.kind === 'unsatisfiable') return { status: 416, headers: ['content-range', `bytes */${length}`, 'age', ageField, 'cache-status', status], reason: 'cache_hit' };
    }
    // HEAD: node sends the head only, with the GET's Content-Length (RFC 9110 §9.3.2).
    const wire = r.wire === undefined ? (r.wire = wireFields(r.headers)) : r.wire;
    if (wire === null) return { status: r.status, headers: [...r.headers, 'age', ageField, 'cache-status', status], body, reason: 'cache_hit' };
    // The stored fields were checked once (wireFields), and Age and Cache-Status are usher's own: no per-hit check or copy in the exchange.
    const h = wire.slice();
    h.push('age', ageField, 'cache-status', status);
    if (!collapsed && detail === undefined && range === undefined) r.hitHead = { age: whole, ttl, headers: h.slice() };
    return { status: r.status, headers: h, body, reason: 'cache_hit', checked: true };
  }

  upstreamRequest(ctx: RequestContext, head: UpstreamRequestHead): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const s = ctx.get(kState);
    if (s === undefined || s.invalidate || s.fwd === 'bypass') return undefined;
    if (s.swr !== undefined) {
      this.revalidator.start(ctx, s.key, s.secondary, s.swr.r, head);
      return this.staleHit(ctx, s);
    }
    // A miss is filled with the whole response (the client's own validators are for its copy,
    // not the cache's); a revalidation sends the stored response's validators (§4.3.1).
    removeFields(head.headers, CONDITIONALS);
    const e = s.entry;
    if (e === undefined) return undefined;
    if (e.upstreamEtag !== undefined) head.headers.push('if-none-match', e.upstreamEtag);
    if (e.lastModified !== undefined) head.headers.push('if-modified-since', e.lastModified);
    return undefined;
  }

  /** The stale response a stale-while-revalidate request gets (also when no upstream could be picked). */
  private staleHit(ctx: RequestContext, s: CacheState): LocalResponse | Promise<LocalResponse | undefined> {
    const { r, age } = s.swr!;
    s.swr = undefined;
    return r.file === undefined ? this.hit(ctx, r, age, false, 'stale-while-revalidate') : this.diskHit(ctx, s.key, s.secondary, NO_DIRECTIVES, false, r, age, 'stale-while-revalidate');
  }

  upstreamResponse(ctx: RequestContext, head: ResponseHead): void | Promise<void> {
    const s = ctx.get(kState);
    if (s === undefined) return;
    const h = head.headers;
    if (s.invalidate) {
      if (head.status >= 200 && head.status < 400) return this.invalidate(ctx, s.key, h);
      return;
    }
    if (s.fwd === 'bypass') return;
    const t = now();
    if (s.entry !== undefined && head.status === 304) return this.refresh(ctx, s, s.entry, head, t);
    if (head.status >= 500 && s.stale !== undefined && this.staleOnError(ctx, s.stale, t)) return this.serveStale(ctx, s, s.stale, head, t, String(head.status));
    const { control, directives, targeted } = this.control(h);
    const vary = nameList(joined(h, 'vary'));
    let why = notStorable({
      method: ctx.method,
      status: head.status,
      response: directives,
      request: requestDirectives(ctx),
      authorization: ctx.header('authorization') !== undefined,
      hasExpires: !targeted && first(h, 'expires') !== undefined,
      varyStar: vary.includes('*'),
    });
    if (why === undefined && this.config.set_cookie === 'pass' && first(h, 'set-cookie') !== undefined) why = 'set-cookie';
    const cl = first(h, 'content-length');
    if (why === undefined && cl !== undefined && Number(cl) > this.store.maxObjectSize) why = 'too large';
    if (why !== undefined) {
      s.detail = why;
      this.release(s, t);
      return;
    }
    s.pending = { status: head.status, upstream: h.slice(), directives, control, targeted, varyNames: vary, requestTime: s.requestTime, responseTime: t, headers: undefined, contentLength: -1 };
  }

  /** §4.3.4: the upstream's 304 confirms the stored response: its fields update it, and the client gets it. */
  private refresh(ctx: RequestContext, s: CacheState, e: StoredResponse, head: ResponseHead, t: number): void {
    const h = head.headers;
    const own = this.updated(s.key, e, h, s.requestTime, t, ctx.requestId);
    this.release(s, t, false);
    const age = e.initialAge;
    const status = `usher; fwd=stale; fwd-status=304; ttl=${Math.floor(e.lifetime - age)}`;
    h.length = 0;
    if (notModified(ctx.header('if-none-match'), ctx.header('if-modified-since'), e)) {
      head.status = 304;
      h.push(...notModifiedHeaders(e), ...own, 'age', String(Math.floor(age)), 'cache-status', status);
      return;
    }
    head.status = e.status;
    h.push(...e.headers, ...own, 'age', String(Math.floor(age)), 'cache-status', status);
    s.refreshed = e;
  }

  /** §3.2: a 304's fields update the stored response `e` (and its freshness); returns usher's own fields of that request (its id), which are not stored. */
  updated(key: string, e: StoredResponse, h: readonly string[], requestTime: number, t: number, requestId: string): string[] {
    const own: string[] = [];
    const updates = new Map<string, string[]>();
    const weakened = e.etag !== e.upstreamEtag;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!.toLowerCase();
      const value = h[i + 1]!;
      // usher's own fields for this request (its id) go out but are not stored.
      if (value === requestId) own.push(h[i]!, value);
      else if (!NOT_UPDATED.has(name) && !(weakened && name === 'etag')) {
        let list = updates.get(name);
        if (list === undefined) updates.set(name, (list = []));
        list.push(h[i]!, value);
      }
    }
    const stored: string[] = [];
    for (let i = 0; i < e.headers.length; i += 2) if (!updates.has(e.headers[i]!.toLowerCase())) stored.push(e.headers[i]!, e.headers[i + 1]!);
    for (const list of updates.values()) stored.push(...list);
    e.headers = stored;
    e.wire = undefined;
    e.hitHead = undefined;
    // A targeted field in the 304 replaces the stored one; without one, a stored response that had one keeps it.
    const c = this.control(h);
    if (c.targeted || !e.targeted) {
      const merged = c.targeted ? c : this.control(stored);
      e.control = merged.control;
      e.directives = merged.directives;
      e.targeted = merged.targeted;
    }
    e.date = first(stored, 'date');
    if (!weakened) e.etag = e.upstreamEtag = first(stored, 'etag');
    e.lastModified = first(stored, 'last-modified') ?? e.lastModified;
    const date = httpDate(e.date);
    e.responseTime = t;
    e.initialAge = initialAge({ requestTime, responseTime: t, date, age: ageValue(first(h, 'age')) });
    e.lifetime = this.lifetime(e.status, e.directives, e.targeted, stored, date, t);
    const before = e.size;
    e.size = sizeOf(e);
    if (e.size !== before) this.store.touched(key);
    // A disk store's file gets the new fields too, so that a restart keeps them.
    if (e.file !== undefined) this.disk?.persist(key, e);
    else this.store.l2?.write(key, e, t, this.config.stale_if_error);
    return own;
  }

  /** RFC 5861 §4: the upstream failed; a stale response within stale-if-error (the response's, the request's, or the route's) may answer. */
  private staleOnError(ctx: RequestContext, r: StoredResponse, t: number): boolean {
    const d = r.directives;
    // must-revalidate and proxy-revalidate forbid any stale use (RFC 9111 §5.2.2.2: a 504 instead).
    if (d.mustRevalidate || d.proxyRevalidate) return false;
    const req = requestDirectives(ctx);
    if (req.noCache) return false;
    // The operator's override is no permission from the origin: a response with no-cache (never used
    // unvalidated, §5.2.2.4) or s-maxage (proxy-revalidate's semantics, §5.2.2.10) gets only its own.
    let window = d.noCache || d.sMaxage !== undefined ? 0 : this.config.stale_if_error;
    if (d.staleIfError !== undefined && d.staleIfError > window) window = d.staleIfError;
    if (req.staleIfError !== undefined && req.staleIfError > window) window = req.staleIfError;
    const age = r.initialAge + Math.max(0, t - r.responseTime);
    return age - r.lifetime <= window;
  }

  /** Answers with the stored response instead of the upstream's failure. */
  private serveStale(ctx: RequestContext, s: CacheState, r: StoredResponse, head: ResponseHead, t: number, upstreamStatus: string): void {
    const h = head.headers;
    const own: string[] = [];
    for (let i = 0; i < h.length; i += 2) if (h[i + 1] === ctx.requestId) own.push(h[i]!, h[i + 1]!);
    this.release(s, t, false);
    const age = r.initialAge + Math.max(0, t - r.responseTime);
    this.store.stats.hits++;
    this.store.stats.stale++;
    head.status = r.status;
    h.length = 0;
    h.push(...r.headers, ...own, 'age', String(Math.floor(age)), 'cache-status', `usher; hit; ttl=${Math.floor(r.lifetime - age)}; fwd=stale; fwd-status=${upstreamStatus}; detail="stale-if-error"`);
    s.refreshed = r;
  }

  /** upstream_failed: the upstream could not be reached or did not answer; a stale response may (stale-if-error). */
  upstreamFailed(ctx: RequestContext, reason: ReasonCode): LocalResponse | undefined {
    const s = ctx.get(kState);
    // No server to take even the background revalidation (upstream_peer failed): the stale response still answers.
    if (s?.swr !== undefined) {
      const { r, age } = s.swr;
      s.swr = undefined;
      if (r.file === undefined) return this.hit(ctx, r, age, false, 'stale-while-revalidate');
      const body = this.disk!.lazyBody(s.key, r);
      ctx.set(kBody, body);
      return this.hit(ctx, r, age, false, 'stale-while-revalidate', body, s.key);
    }
    if (s === undefined || s.stale === undefined || s.invalidate) return undefined;
    const t = now();
    const r = s.stale;
    if (!this.staleOnError(ctx, r, t)) return undefined;
    this.release(s, t, false);
    const age = r.initialAge + Math.max(0, t - r.responseTime);
    this.store.stats.stale++;
    if (r.file === undefined) return this.hit(ctx, r, age, false, `stale-if-error; ${reason}`);
    // Synchronous: the file is checked as it streams (a bad one resets the reply and is removed).
    const body = this.disk!.lazyBody(s.key, r);
    ctx.set(kBody, body);
    return this.hit(ctx, r, age, false, `stale-if-error; ${reason}`, body, s.key);
  }

  /**
   * The directives for this cache (RFC 9213 §2.2): the first targeted field of the route's list
   * with a valid, non-empty value, else Cache-Control.
   */
  control(h: readonly string[]): { control: string | undefined; directives: Readonly<Directives>; targeted: boolean } {
    for (const name of this.config.targeted_fields) {
      const v = joined(h, name);
      if (v === undefined) continue;
      const control = targetedControl(v);
      if (control !== undefined) return { control, directives: parseCacheControl(control), targeted: true };
    }
    const control = joined(h, 'cache-control');
    return { control, directives: parseCacheControl(control), targeted: false };
  }

  lifetime(status: number, d: Readonly<Directives>, targeted: boolean, h: readonly string[], date: number, t: number): number {
    // §2.2: with a targeted field, Expires is ignored as Cache-Control is.
    const expires = targeted ? undefined : first(h, 'expires');
    return freshnessLifetime(
      { status, response: d, date, expires: expires === undefined ? undefined : httpDate(expires), lastModified: httpDate(first(h, 'last-modified')), heuristicFraction: this.config.heuristic_fraction, heuristicMax: this.config.heuristic_max },
      t,
    );
  }

  response(ctx: RequestContext, head: ResponseHead): void {
    // A hit carries its Cache-Status already; usher's own replies (errors) are not the cache's.
    if (head.local) return;
    const h = head.headers;
    // The purge tags and the targeted fields meant for this cache are its own (the pending response kept the upstream's fields).
    if (this.hiddenFields.size > 0) removeFields(h, this.hiddenFields);
    const s = ctx.get(kState);
    if (s === undefined || s.invalidate) return;
    const e = s.refreshed;
    if (e !== undefined) {
      // The stored representation, whatever a response hook (compression) made of the 304's head.
      removeFields(h, REPRESENTATION);
      for (let i = 0; i < e.headers.length; i += 2) if (REPRESENTATION.has(e.headers[i]!.toLowerCase())) h.push(e.headers[i]!, e.headers[i + 1]!);
      return;
    }
    if (head.status === 304 && s.entry !== undefined) return; // answered in refresh()
    const p = s.pending;
    if (p !== undefined) {
      if (ctx.method !== 'GET' || head.status !== p.status) {
        s.pending = undefined;
      } else {
        p.headers = this.storedHeaders(ctx, p, h);
        // Vary as it goes downstream: compression adds Accept-Encoding.
        p.varyNames = nameList(joined(p.headers, 'vary'));
        const cl = first(h, 'content-length');
        p.contentLength = cl === undefined ? -1 : Number(cl);
      }
    }
    h.push('cache-status', `usher; fwd=${s.fwd}${s.pending !== undefined ? '; stored' : ''}${s.detail !== undefined ? `; detail="${s.detail}"` : ''}`);
    // No body to copy: stored now.
    if (s.pending !== undefined && (head.status === 204 || p!.contentLength === 0)) {
      if (this.disk === undefined) this.commit(ctx, s, EMPTY);
      else this.commitFile(ctx, s, this.disk.writer());
    }
  }

  /** The upstream's fields, with the representation fields as they go downstream (compressed or not). */
  private storedHeaders(ctx: RequestContext, p: Pending, downstream: readonly string[]): string[] {
    const out: string[] = [];
    const u = p.upstream;
    let hasDate = false;
    for (let i = 0; i < u.length; i += 2) {
      const name = u[i]!.toLowerCase();
      if (NOT_STORED.has(name) || REPRESENTATION.has(name) || this.hiddenFields.has(name) || u[i + 1] === ctx.requestId) continue;
      if (name === 'date') hasDate = true;
      out.push(u[i]!, u[i + 1]!);
    }
    for (let i = 0; i < downstream.length; i += 2) if (REPRESENTATION.has(downstream[i]!.toLowerCase())) out.push(downstream[i]!, downstream[i + 1]!);
    // RFC 9110 §6.6.1: a cache adds the Date the origin did not send, so that Age and Date agree.
    if (!hasDate) out.push('date', new Date(p.responseTime * 1000).toUTCString());
    return out;
  }

  responseBody(ctx: RequestContext): Transform | undefined {
    const s = ctx.get(kState);
    if (s === undefined) return undefined;
    const e = s.refreshed;
    if (e !== undefined) return new StoredBody(e.file === undefined ? e.body : this.disk!.lazyBody(s.key, e));
    if (s.pending?.headers === undefined) return undefined;
    const growing = this.growing(ctx, s);
    if (this.disk !== undefined) {
      const writer = this.disk.writer();
      if (growing !== undefined) growing.attach(writer.share(growing));
      return new DiskTee(writer, this.store.maxObjectSize, (w) => {
        if (w === null) {
          s.pending = undefined;
          s.detail = 'too large';
          this.release(s, now());
          return;
        }
        if (s.pending !== undefined && (s.pending.contentLength < 0 || s.pending.contentLength === w.length)) this.commitFile(ctx, s, w);
        else w.abandon();
      }, s.pending.contentLength);
    }
    return new Tee(this.store.maxObjectSize, (body) => {
      if (body === null) {
        s.pending = undefined;
        s.detail = 'too large';
        this.release(s, now());
        return;
      }
      if (s.pending !== undefined && (s.pending.contentLength < 0 || s.pending.contentLength === body.length)) this.commit(ctx, s, body);
    }, growing, s.pending.contentLength);
  }

  /**
   * A fill's response of known length: the response to store is made now, and the requests
   * collapsed onto the fill follow its body as it grows (woken now; later ones follow at once).
   * The body transform is made right after, with the returned body.
   */
  private growing(ctx: RequestContext, s: CacheState): GrowingBody | undefined {
    const f = s.fill;
    const p = s.pending!;
    if (f === undefined || p.contentLength <= 0 || p.contentLength > this.store.maxObjectSize) return undefined;
    const r = (s.built = this.build(ctx, s, p));
    r.length = p.contentLength;
    const body = this.disk === undefined ? GrowingBody.memory(p.contentLength) : GrowingBody.file(p.contentLength);
    f.growing = { r, body };
    // After this returns: the waiters are woken on the next tick, once the transform that feeds the body is in place.
    queueMicrotask(() => this.store.wake(f));
    return body;
  }

  private commit(ctx: RequestContext, s: CacheState, body: Buffer): void {
    const r = this.stored(ctx, s, body);
    r.size = sizeOf(r);
    this.store.put(s.key, r, this.config.max_variants);
    // The shared L2 gets a copy in the background (the response is not held up by it).
    this.store.l2?.write(s.key, r, now(), this.config.stale_if_error);
    this.release(s, now(), false);
  }

  /** A disk store's: the file gets its trailer and is renamed into place; the fill is released once it is indexed (or failed). */
  private commitFile(ctx: RequestContext, s: CacheState, w: BodyWriter): void {
    const r = this.stored(ctx, s, EMPTY);
    r.length = w.length;
    r.file = { path: this.disk!.fileFor(s.key), digest: w.digest(), trailer: 0 };
    s.committing = true;
    void this.disk!.commit(s.key, r, w, this.config.max_variants).finally(() => {
      s.committing = false;
      this.release(s, now(), false);
    });
  }

  /** The purge tags the upstream gave (comma- or space-separated values of the tag fields). */
  tagsOf(h: readonly string[]): string[] {
    if (this.tagFields.size === 0) return [];
    const out: string[] = [];
    for (let i = 0; i < h.length; i += 2) {
      if (!this.tagFields.has(h[i]!.toLowerCase())) continue;
      for (const t of h[i + 1]!.split(/[\s,]+/)) if (t !== '' && !out.includes(t)) out.push(t);
    }
    return out;
  }

  /** The StoredResponse of the pending response, with `body`. */
  private stored(ctx: RequestContext, s: CacheState, body: Buffer): StoredResponse {
    const r = s.built ?? this.build(ctx, s, s.pending!);
    s.pending = undefined;
    s.built = undefined;
    r.body = body;
    r.length = body.length;
    return r;
  }

  /** The StoredResponse of the pending response `p`, without its body. */
  private build(ctx: RequestContext, s: CacheState, p: Pending): StoredResponse {
    const headers = p.headers!;
    const dateField = first(headers, 'date');
    const date = httpDate(dateField);
    const etag = first(headers, 'etag');
    const upstreamEtag = first(p.upstream, 'etag');
    const r: StoredResponse = {
      status: p.status,
      headers,
      body: EMPTY,
      length: 0,
      file: undefined,
      varyNames: p.varyNames,
      varyValues: p.varyNames.map((n) => normaliseField(n, ctx.header(n))),
      secondary: s.secondary,
      responseTime: p.responseTime,
      initialAge: initialAge({ requestTime: p.requestTime, responseTime: p.responseTime, date, age: ageValue(first(p.upstream, 'age')) }),
      lifetime: this.lifetime(p.status, p.directives, p.targeted, headers, date, p.responseTime),
      directives: p.directives,
      control: p.control,
      targeted: p.targeted,
      tags: this.tagsOf(p.upstream),
      etag,
      upstreamEtag,
      lastModified: first(headers, 'last-modified'),
      date: dateField,
      size: 0,
    };
    return r;
  }

  /** Ends this request's fill: the waiters look again. `pass`: the response was not storable, so the key's next requests do not queue. */
  private release(s: CacheState, t: number, pass = true): void {
    const f = s.fill;
    if (f === undefined) return;
    s.fill = undefined;
    if (pass) this.store.markPass(s.key, t * 1000);
    this.store.release(s.fillKey, f);
  }

  /**
   * §4.4: the request URI, and Location / Content-Location of the same origin. In a worker
   * process the other workers' stores too: the response waits until they did (or the primary's
   * bound for an answer passed), so that a client that saw it finds no worker serving what it
   * changed.
   */
  private invalidate(ctx: RequestContext, key: string, h: readonly string[]): void | Promise<void> {
    const keys = [key];
    this.store.invalidate(key);
    const rr = ctx.request!;
    for (const name of ['location', 'content-location']) {
      const v = first(h, name);
      if (v === undefined) continue;
      let url: URL;
      try {
        url = new URL(v, key);
      } catch {
        continue;
      }
      const base = new URL(key);
      if (url.protocol !== base.protocol || url.host !== base.host) continue;
      const k = `${rr.scheme}://${url.host}${url.pathname}${url.search}`;
      this.store.invalidate(k);
      keys.push(k);
    }
    const everywhere = this.caches?.invalidateEverywhere;
    // The instances sharing the L2: deleted there and published, before the response goes on.
    const shared = this.store.l2?.invalidate(keys);
    // Without the primary (this worker is draining), this worker's own store only.
    if (everywhere !== undefined) {
      const all = everywhere(this.store.name, keys).then(
        () => undefined,
        () => undefined,
      );
      return shared === undefined ? all : Promise.all([all, shared]).then(() => undefined);
    }
    return shared;
  }

  done(ctx: RequestContext): void {
    ctx.get(kBody)?.close();
    const s = ctx.get(kState);
    // A fill that ended without storing (an error, the client gone, a cut body): the waiters go on.
    if (s?.fill !== undefined && !s.committing) this.release(s, now(), false);
  }

  explain(): string {
    const k = this.config.key;
    const parts = ['scheme, host, path, query'];
    if (k.ignore_query.length > 0) parts.push(`query without ${k.ignore_query.join(', ')}`);
    if (k.headers.length > 0) parts.push(`headers ${k.headers.join(', ')}`);
    if (k.cookies.length > 0) parts.push(`cookies ${k.cookies.join(', ')}`);
    const b = this.config.bypass;
    const bypass = b === undefined ? '' : `; bypass: ${[...b.headers.map((h) => `header ${h}`), ...b.cookies.map((c) => `cookie ${c}`), ...b.query.map((q) => `query ${q}`)].join(', ')}`;
    return `cache (store ${this.config.store}, ${this.store.kind}${this.store.l2 === undefined ? '' : ' + l2 in Redis'}; key: ${parts.join('; ')}; Set-Cookie: ${this.config.set_cookie}; collapse: ${this.config.collapse ? `${this.config.collapse_timeout} ms` : 'off'}${bypass})`;
  }
}

export const cache: RouteFilterDefinition = {
  name: 'cache',
  create: (rc: RouteConfig, deps) => {
    if (rc.cache === undefined) return undefined;
    const store = deps.caches?.get(rc.cache.store);
    if (store === undefined) throw new Error(`usher config: unchecked cache store ${JSON.stringify(rc.cache.store)}`);
    return new Cache(rc.cache, store, deps.clusters, deps.caches);
  },
};
