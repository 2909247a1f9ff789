// Durations and sizes as users write them ("1m30s", "10mb") → milliseconds and bytes.
// The same parsers back the schema's custom `x-usher-kind` keyword (so ajv rejects what they
// reject) and the normalizer (so what passed validation converts without a second check).

/**
 * Node's timers hold a signed 32-bit millisecond count; anything longer fires after 1ms with a
 * TimeoutOverflowWarning (nodejs/node lib/internal/timers.js), so a longer timeout is a bug.
 */
export const MAX_DURATION_MS = 2_147_483_647;

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

// Exported for the JSON Schema, so editors flag the same strings. Both are ECMAScript regexes
// without flags (JSON Schema `pattern`), hence the spelled-out case classes.
export const DURATION_PATTERN = '^\\s*([0-9]+(\\.[0-9]+)?(ms|s|m|h))+\\s*$';
export const SIZE_PATTERN = '^\\s*[0-9]+(\\.[0-9]+)?\\s*([kKmMgG]([iI]?[bB])?|[bB])?\\s*$';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A bad duration or size. `detail` is the message without the hint; `hint` says how to fix it. */
export class UnitError extends Error {
  constructor(
    readonly detail: string,
    readonly hint?: string,
  ) {
    super(hint ? `${detail} (${hint})` : detail);
    this.name = 'UnitError';
  }
}

/** How a value is shown in "got …": strings quoted, everything else described. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (ArrayBuffer.isView(v)) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

const EXPECT_DURATION = 'expected a duration like "5s" or "250ms"';
const EXPECT_SIZE = 'expected a size like "16kb" or "10mb"';

/**
 * Milliseconds from a number (already milliseconds) or a string of number+unit parts:
 * "250ms", "5s", "2m", "1h", "1m30s", "1.5s". Units: ms, s, m, h. A string needs a unit: nginx
 * reads a bare "60" as seconds, so guessing either way would surprise someone.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) {
      throw new UnitError(`${EXPECT_DURATION} or a whole number of milliseconds, got ${describeValue(input)}`);
    }
    return checkMaxDuration(input, input);
  }
  if (typeof input !== 'string') throw new UnitError(`${EXPECT_DURATION}, got ${describeValue(input)}`);
  const s = input.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) {
    throw new UnitError(
      `${EXPECT_DURATION}, got ${describeValue(input)}`,
      `a duration string needs a unit: write "${s}s" for seconds, or ${s} without quotes for milliseconds`,
    );
  }
  const part = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) break;
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    pos = part.lastIndex;
  }
  if (s.length === 0 || pos !== s.length) {
    const unit = /^[0-9.]+\s*([A-Za-z]+)$/.exec(s)?.[1];
    const hint =
      unit && unit.toLowerCase() in DURATION_UNITS
        ? `units are lower case: ${Object.keys(DURATION_UNITS).join(', ')}`
        : `units: ${Object.keys(DURATION_UNITS).join(', ')}; combine them as in "1m30s"`;
    throw new UnitError(`${EXPECT_DURATION}, got ${describeValue(input)}`, hint);
  }
  return checkMaxDuration(Math.round(total), input);
}

function checkMaxDuration(ms: number, input: string | number): number {
  if (ms > MAX_DURATION_MS) {
    throw new UnitError(
      `expected a duration of at most ${MAX_DURATION_MS}ms (about 24.8 days, the longest a Node timer can wait), got ${describeValue(input)}`,
    );
  }
  return ms;
}

/**
 * Bytes from a number (already bytes) or a string: "512", "16kb", "10mb", "1gb". As in nginx,
 * k/kb/kib all mean 1024 (and m/mb/mib 1024², g/gb/gib 1024³); units are case-insensitive.
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new UnitError(`${EXPECT_SIZE} or a whole number of bytes, got ${describeValue(input)}`);
    }
    return input;
  }
  if (typeof input !== 'string') throw new UnitError(`${EXPECT_SIZE}, got ${describeValue(input)}`);
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$/.exec(input.trim());
  const mult = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || mult === undefined) {
    throw new UnitError(
      `${EXPECT_SIZE}, got ${describeValue(input)}`,
      'units: b, kb, mb, gb, also k, m, g, kib, mib, gib; all powers of 1024',
    );
  }
  const bytes = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) throw new UnitError(`expected a size of at most ${Number.MAX_SAFE_INTEGER} bytes, got ${describeValue(input)}`);
  return bytes;
}
