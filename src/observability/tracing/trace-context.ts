// W3C Trace Context (https://www.w3.org/TR/trace-context/, Level 1): the traceparent field and
// usher's ids. Pure functions; the tracer (tracer.ts) decides what to continue.
import { randomFillSync } from 'node:crypto';

export interface ParentContext {
  readonly traceId: string;
  /** The caller's span id (parent-id). */
  readonly parentId: string;
  readonly sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * A traceparent value, or undefined when it is not valid (§3.2): version-traceid-parentid-flags
 * in lower-case hex; version ff, an all-zero trace id or parent id are invalid. Version 00 is
 * exactly 55 characters; a later version may carry more after a "-" (§3.2.4: parse what 00
 * defines). Two traceparent fields arrive joined with ", " and fail the length check.
 */
export function parseTraceparent(value: string | undefined): ParentContext | undefined {
  if (value === undefined) return undefined;
  const v = value; // node trims the field's surrounding whitespace
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const parentId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

// Ids from a pool of random bytes refilled 4 KiB at a time: one randomFillSync per ~170 traces
// instead of a call (and a Buffer) per id. Not secret, only unique (§3.2.2.3 asks for randomness).
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return s;
}

export function newTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE ? newTraceId() : id;
}

export function newSpanId(): string {
  const id = randomHex(8);
  return id === ZERO_SPAN ? newSpanId() : id;
}
