// The config's cache stores, built once per runtime. A reload keeps a store whose settings did
// not change (its responses stay cached); a changed or removed one starts empty / is dropped.
import type { CacheStoreConfig } from '../filters/cache/config.js';
import { MemoryStore } from './store.js';

export class CacheStores {
  private constructor(private readonly stores: ReadonlyMap<string, MemoryStore>) {}

  static build(config: Readonly<Record<string, CacheStoreConfig>> | undefined, previous?: CacheStores): CacheStores {
    const stores = new Map<string, MemoryStore>();
    for (const [name, c] of Object.entries(config ?? {})) {
      const old = previous?.stores.get(name);
      const keep = old !== undefined && old.maxObjectSize === c.max_object_size && old.maxSize === c.max_size;
      stores.set(name, keep ? old : new MemoryStore(name, c.max_size, c.max_object_size));
    }
    return new CacheStores(stores);
  }

  get(name: string): MemoryStore | undefined {
    return this.stores.get(name);
  }
}

export const NO_CACHE_STORES = CacheStores.build(undefined);
