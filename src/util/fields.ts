// Flat name/value field lists (the shape of ResponseHead.headers and of an upstream request head): lookups and removals by lower-case name.

/** Every value of `name`, joined with ", " (RFC 9110 §5.3), or undefined. */
export function joined(h: readonly string[], name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n.length === name.length && n.toLowerCase() === name) out = out === undefined ? h[i + 1]! : `${out}, ${h[i + 1]!}`;
  }
  return out;
}

/** The first value of `name`, or undefined. */
export function first(h: readonly string[], name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n.length === name.length && n.toLowerCase() === name) return h[i + 1]!;
  }
  return undefined;
}

export function has(h: readonly string[], name: string): boolean {
  return first(h, name) !== undefined;
}

/** Removes every field named `name` (lower case), in place. */
export function removeField(h: string[], name: string): void {
  let w = 0;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n.length === name.length && n.toLowerCase() === name) continue;
    h[w] = n;
    h[w + 1] = h[i + 1]!;
    w += 2;
  }
  h.length = w;
}

/** Removes every field of the names in `names` (lower-case), in place. */
export function removeFields(h: string[], names: ReadonlySet<string>): void {
  let w = 0;
  for (let i = 0; i < h.length; i += 2) {
    if (names.has(h[i]!.toLowerCase())) continue;
    h[w] = h[i]!;
    h[w + 1] = h[i + 1]!;
    w += 2;
  }
  h.length = w;
}

/** Lower-case field names of a list value (Vary, Connection), without empties. */
export function nameList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const n = part.trim().toLowerCase();
    if (n !== '' && !out.includes(n)) out.push(n);
  }
  return out;
}

/** A headers object (undici's response headers) as flat pairs, without the names `skip` says. */
export function flatHeaders(headers: Readonly<Record<string, string | string[] | undefined>>, skip?: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(headers)) {
    if (v === undefined || skip?.(name) === true) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out;
}
