// Purges across the config's stores (the admin API's POST /cache/purge; a route's PURGE method
// purges its own key in its own store). A URL is turned into a key the way the cache filter
// makes one (scheme, lower-case host, a port that is not the scheme's default, path, query);
// a prefix is compared with keys as they are, so "https://example.com/blog/" purges that site's
// /blog/ tree and nothing of another host.
import type { CacheStores } from './registry.js';
import type { Purge } from './store.js';

export interface PurgeRequest {
  url?: unknown;
  prefix?: unknown;
  tag?: unknown;
  store?: unknown;
}

export type PurgeResult = { ok: true; purged: number; stores: Record<string, number>; shared?: Promise<void> | undefined } | { ok: false; status: number; message: string };

/** The key of an absolute http(s) URL, or undefined. */
export function keyOfUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  return `${u.protocol}//${u.host}${u.pathname}${u.search === '?' ? '' : u.search}`;
}

export function purge(stores: CacheStores, body: PurgeRequest): PurgeResult {
  const given = (['url', 'prefix', 'tag'] as const).filter((k) => body[k] !== undefined);
  if (given.length !== 1) return { ok: false, status: 400, message: 'give exactly one of "url" (an absolute URL: its stored responses), "prefix" (every key that starts with it) or "tag" (every response the upstream tagged with it)' };
  const which = given[0]!;
  const value = body[which];
  if (typeof value !== 'string' || value === '') return { ok: false, status: 400, message: `"${which}" must be a non-empty string` };
  let p: Purge;
  if (which === 'url') {
    const key = keyOfUrl(value);
    if (key === undefined) return { ok: false, status: 400, message: `"url" must be an absolute http or https URL, got ${JSON.stringify(value)}` };
    p = { url: key };
  } else p = which === 'prefix' ? { prefix: value } : { tag: value };
  const all = stores.all();
  let targets = [...all.keys()];
  if (body.store !== undefined) {
    if (typeof body.store !== 'string' || !all.has(body.store)) return { ok: false, status: 404, message: `no cache store named ${JSON.stringify(body.store)} (stores: ${targets.join(', ') || 'none'})` };
    targets = [body.store];
  }
  const out: Record<string, number> = {};
  const shared: Promise<void>[] = [];
  let n = 0;
  for (const name of targets) {
    const store = all.get(name)!;
    n += out[name] = store.purge(p);
    // The instances sharing its L2: deleted there and published (this instance's count only).
    if (store.l2 !== undefined) shared.push(store.l2.purge(p));
  }
  return { ok: true, purged: n, stores: out, shared: shared.length === 0 ? undefined : Promise.all(shared).then(() => undefined) };
}

/** purge(), resolved once the stores' L2s are purged too (deleted in Redis and published; bounded by their timeouts, never rejects). */
export async function purgeShared(stores: CacheStores, body: PurgeRequest): Promise<PurgeResult> {
  const r = purge(stores, body);
  if (r.ok && r.shared !== undefined) await r.shared;
  if (r.ok) delete r.shared;
  return r;
}
