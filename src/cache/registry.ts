// The config's cache stores, built once per runtime. A reload keeps a store whose settings did
// not change (its responses stay cached); a changed or removed one starts empty / is dropped.
// A disk store reads its directory in start() (the runtime going live), never while built:
// `usher explain` and a rejected reload touch no directory.
import type { CacheStoreConfig } from '../filters/cache/config.js';
import type { Logger } from 'pino';
import { DiskStore } from './disk.js';
import { L2 } from './l2.js';
import { MemoryStore, type CacheStore, type Purge, type SecondLevel } from './store.js';

/** A route's PURGE in a worker process: the same purge in every worker's store of that name (src/server/workers/). */
export type PurgeEverywhere = (store: string, p: Purge) => Promise<{ purged: number; missed: number[] }>;
/** An unsafe method's invalidation (RFC 9111 §4.4) in a worker process: the same keys leave every other worker's store of that name. */
export type InvalidateEverywhere = (store: string, keys: string[]) => Promise<{ missed: number[] }>;

export class CacheStores {
  /**
   * Set in a worker process (each holds its own stores): a route's PURGE goes to every worker.
   * Kept by the stores a reload builds.
   */
  everywhere: PurgeEverywhere | undefined;
  /** Set in a worker process, as `everywhere`: an invalidation goes to every other worker. */
  invalidateEverywhere: InvalidateEverywhere | undefined;

  /** The previous stores' L2 clients this one no longer uses: closed when this one goes live (start). */
  private retired: SecondLevel[] = [];

  private constructor(private readonly stores: ReadonlyMap<string, CacheStore>) {}

  static build(config: Readonly<Record<string, CacheStoreConfig>> | undefined, previous?: CacheStores): CacheStores {
    const stores = new Map<string, CacheStore>();
    for (const [name, c] of Object.entries(config ?? {})) {
      const old = previous?.stores.get(name);
      const keep =
        old !== undefined &&
        old.maxObjectSize === c.max_object_size &&
        old.maxSize === c.max_size &&
        old.kind === c.store &&
        (!(old instanceof DiskStore) || old.path === c.path) &&
        L2.fingerprint(old.l2?.config) === L2.fingerprint(c.l2);
      let store: CacheStore;
      if (keep) store = old;
      else if (c.store === 'disk') store = new DiskStore(name, c.path!, c.max_size, c.max_object_size);
      else {
        store = new MemoryStore(name, c.max_size, c.max_object_size);
        if (c.l2 !== undefined) store.l2 = new L2(store, c.l2);
      }
      stores.set(name, store);
    }
    const built = new CacheStores(stores);
    if (previous !== undefined) {
      const used = new Set(stores.values());
      for (const old of previous.stores.values()) if (old.l2 !== undefined && !used.has(old)) built.retired.push(old.l2);
    }
    built.everywhere = previous?.everywhere;
    built.invalidateEverywhere = previous?.invalidateEverywhere;
    return built;
  }

  get(name: string): CacheStore | undefined {
    return this.stores.get(name);
  }

  /** Every store, by name. */
  all(): ReadonlyMap<string, CacheStore> {
    return this.stores;
  }

  /** Opens what the stores need (a disk store's index); a failure is logged by the caller and leaves that store empty. */
  start(onError: (name: string, err: unknown) => void, log?: Logger): void {
    for (const [name, s] of this.stores) {
      s.start().catch((err: unknown) => onError(name, err));
      s.l2?.start(log);
    }
    for (const l2 of this.retired.splice(0)) void l2.close();
  }

  /** Closes the stores' L2 connections (shutdown). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.stores.values()].map((s) => s.l2?.close()));
  }
}

export const NO_CACHE_STORES = CacheStores.build(undefined);
