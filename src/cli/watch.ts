import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/**
 * Calls `onChange` when the file's content changes. Watches the directory, not the file: editors
 * and config managers replace files by rename, which ends a watch on the file itself. Events are
 * debounced, and a change that leaves the content identical does not fire.
 */
export function watchConfig(file: string, onChange: () => void, debounceMs = 150): () => void {
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
        if (now === undefined || now === last) return;
        last = now;
        onChange();
      }, debounceMs);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // Watching is a convenience; SIGHUP still reloads.
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
