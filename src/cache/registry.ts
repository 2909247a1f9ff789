// The config's cache stores, built once per runtime. A reload keeps a store whose settings did
// not change (its responses stay cached); a changed or removed one starts empty / is dropped.
// A disk store reads its directory in start() (the runtime going live), never while built:
// `usher explain` and a rejected reload touch no directory.
import type { CacheStoreConfig } from '../filters/cache/config.js';
import { DiskStore } from './disk.js';
import { MemoryStore, type CacheStore, type Purge } from './store.js';

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

  private constructor(private readonly stores: ReadonlyMap<string, CacheStore>) {}

  static build(config: Readonly<Record<string, CacheStoreConfig>> | undefined, previous?: CacheStores): CacheStores {
    const stores = new Map<string, CacheStore>();
    for (const [name, c] of Object.entries(config ?? {})) {
      const old = previous?.stores.get(name);
      const keep = old !== undefined && old.maxObjectSize === c.max_object_size && old.maxSize === c.max_size && old.kind === c.store && (!(old instanceof DiskStore) || old.path === c.path);
      stores.set(name, keep ? old : c.store === 'disk' ? new DiskStore(name, c.path!, c.max_size, c.max_object_size) : new MemoryStore(name, c.max_size, c.max_object_size));
    }
    const built = new CacheStores(stores);
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
  start(onError: (name: string, err: unknown) => void): void {
    for (const [name, s] of this.stores) s.start().catch((err: unknown) => onError(name, err));
  }
}

export const NO_CACHE_STORES = CacheStores.build(undefined);
