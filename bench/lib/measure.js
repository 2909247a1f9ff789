// The micro-benchmark primitive: time `fn` over `iterations` calls, several runs after a
// warm-up, and report the median nanoseconds per call. Timing is for humans to read, never a
// test's pass/fail.
import { median } from './stats.js';

/** Results land here so V8 cannot drop a call whose value nobody reads. */
export let sink;

/**
 * @param {string} name
 * @param {(i: number) => unknown} fn  called with the iteration index
 * @param {number} iterations          calls per run; aim for a run of 10–100 ms
 * @param {{ runs?: number, warmupRuns?: number }} [opts]
 * @returns {{ name: string, iterations: number, nsPerOp: number, minNs: number, maxNs: number }}
 */
export function measure(name, fn, iterations, { runs = 7, warmupRuns = 2 } = {}) {
  const samples = [];
  for (let run = -warmupRuns; run < runs; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink = fn(i);
    const nsPerOp = Number(process.hrtime.bigint() - start) / iterations;
    if (run >= 0) samples.push(nsPerOp); // warm-up runs let the JIT optimise before we time
  }
  return { name, iterations, nsPerOp: median(samples), minNs: Math.min(...samples), maxNs: Math.max(...samples) };
}
