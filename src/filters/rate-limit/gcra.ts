// GCRA, the generic cell rate algorithm (ITU-T I.371; the "virtual scheduling" form of the leaky
// bucket). It decides exactly as a token bucket of `burst` tokens refilled at one per
// `interval`, but its whole state is one number per key — the theoretical arrival time (TAT) —
// so the local store is one Map entry and the Redis store one string with an expiry, and both
// run this same arithmetic (the Lua script in redis-store.ts mirrors `gcra`).
//
//   tat' = max(tat, now) + interval     allowed iff tat' - now <= burst * interval
//
// On allow, tat' is stored; on deny nothing changes, and the client may retry once
// tat' - now has fallen to burst * interval.

export interface Decision {
  allowed: boolean;
  /** Requests that would still be allowed right now. */
  remaining: number;
  /** ms until the bucket is full again (allowed) or until one request would pass (denied). */
  reset: number;
}

/** `d` is tat' - now for this request (ms), `interval` and `burst` the policy's rate. */
export function decide(d: number, interval: number, burst: number): Decision {
  const cap = burst * interval;
  // A millionth of an interval of slack: interval = per / rate is rarely exact in binary.
  if (d <= cap + interval * 1e-6) return { allowed: true, remaining: Math.max(0, Math.floor((cap - d) / interval + 1e-6)), reset: d };
  return { allowed: false, remaining: 0, reset: d - cap };
}

/** One step on a stored TAT (undefined: a new key). Returns the decision and the TAT to store (undefined: leave it). */
export function gcra(tat: number | undefined, now: number, interval: number, burst: number): { decision: Decision; tat: number | undefined } {
  const next = Math.max(tat ?? now, now) + interval;
  const decision = decide(next - now, interval, burst);
  return { decision, tat: decision.allowed ? next : undefined };
}
