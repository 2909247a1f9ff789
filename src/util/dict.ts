// Objects keyed by names someone else chose (config names, header names). A plain `{}` inherits
// from Object.prototype, so a key like "__proto__" sets the prototype instead of an entry, and
// "constructor" or "toString" read as present before anything is stored: an upstream named
// "__proto__" validated as "0 upstreams" and every request to it got 500 (issue #11, fuzzing).
// A null-prototype object has only the entries put in it.

/** An empty object with no prototype, for name → value tables. */
export function dict<T>(entries?: Iterable<readonly [string, T]>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  if (entries !== undefined) for (const [k, v] of entries) out[k] = v;
  return out;
}
