import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface ConfigWatch {
  /**
   * Another trigger (SIGHUP) is loading the file now: later changes are compared with its
   * content. Without this, a file saved as B, loaded by SIGHUP, then restored to A within the
   * debounce window looks "unchanged" to the watcher, and B keeps serving.
   */
  sync(): void;
  close(): void;
}

/**
 * Calls `onChange` when the file's content changes. Watches the directory, not the file: editors
 * and config managers replace files by rename, which ends a watch on the file itself. Events are
 * debounced, and a change that leaves the content identical to the last load does not fire.
 */
export function watchConfig(file: string, onChange: () => void, debounceMs = 150): ConfigWatch {
  const path = resolve(file);
  const name = basename(path);
  let last = read(path);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const now = read(path);
        // An empty read is a save caught between truncate and write (writeFile opens with
        // O_TRUNC): no config is empty, and the write's own event follows.
        if (now === undefined || now === '' || now === last) return;
        last = now;
        onChange();
      }, debounceMs);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // Watching is a convenience; SIGHUP still reloads.
  }
  return {
    sync: () => {
      last = read(path);
    },
    close: () => {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
