// V8 settings for a serving process, applied once before it serves (a single process, the
// primary and every worker). Measured with `node bench/tools/callgrind.js --gc` (issue #10).
import v8 from 'node:v8';

let tuned = false;

/**
 * Turn off V8's allocation-site pretenuring. V8 watches the object and array literals of hot
 * code; a site whose objects have all survived a few scavenges starts allocating them in old
 * space directly. Under proxy load that guess is wrong and costly: a request's objects live for
 * a millisecond, but a scavenge comes every few hundred requests, so the in-flight requests'
 * objects (a few per request, from a dozen literal sites) survive each one and their sites get
 * tenured. From then on every request allocates some objects in old space; they point to the
 * request's young objects (headers, buffers, closures, promises), which the scavenger must keep
 * and then promote, as old space counts as live until a full GC: whole request graphs are
 * promoted and die in old space. On post10k this took the young generation's survival from 1% to
 * 65-70% and GC pauses from 2.6 to 20-40 µs a request; which sites get tenured moves with
 * unrelated code, so the cost came and went between commits. Without pretenuring a
 * long-lived structure (a reloaded route table) is copied once more by the scavenger: a one-off.
 * A node started with an explicit --[no-]allocation-site-pretenuring keeps its choice.
 */
export function tuneV8ForServing(): void {
  if (tuned) return;
  tuned = true;
  // (NODE_OPTIONS cannot carry this V8 flag: node refuses it there, so the command line is the only place.)
  if (process.execArgv.some((a) => /allocation[-_]site[-_]pretenuring/.test(a))) return;
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}
