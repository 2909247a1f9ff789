// Warnings for durations written as bare numbers under a second. A number is milliseconds
// (units.ts), so `interval: 5` waits 5 ms, which is rarely what was meant: people write seconds
// (nginx reads a bare "60" as seconds). A bare *string* is refused for that reason; a number is
// valid, so it is taken, with a warning for 1–999 (0 is a common "off", and from a second on
// the milliseconds are plain to see). Found from the schema, so every duration key is covered.
import type { Issues, Segment } from './issues.js';

type Json = Record<string, unknown>;
const isRec = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export function warnBareDurations(schema: Json, data: unknown, issues: Issues, path: Segment[] = []): void {
  if (schema['x-usher-kind'] === 'duration') {
    if (typeof data === 'number' && data > 0 && data < 1000) {
      issues.warning(path, `a duration of ${data} millisecond${data === 1 ? '' : 's'}`, {
        hint: `a bare number is milliseconds: write "${data}s" for seconds, or "${data}ms" to keep ${data} millisecond${data === 1 ? '' : 's'}`,
      });
    }
    return;
  }
  if (Array.isArray(schema.anyOf)) {
    for (const branch of schema.anyOf as Json[]) {
      // Only the branch of the data's own shape: a value is looked at once.
      if ((branch.type === 'object' && isRec(data)) || (branch.type === 'array' && Array.isArray(data))) {
        warnBareDurations(branch, data, issues, path);
        return;
      }
    }
    return;
  }
  if (Array.isArray(data) && isRec(schema.items)) {
    data.forEach((item, i) => warnBareDurations(schema.items as Json, item, issues, [...path, i]));
    return;
  }
  if (!isRec(data)) return;
  const props = isRec(schema.properties) ? schema.properties : {};
  const patterns = isRec(schema.patternProperties) ? Object.entries(schema.patternProperties) : [];
  for (const [key, value] of Object.entries(data)) {
    let sub = Object.hasOwn(props, key) ? props[key] : undefined;
    if (sub === undefined) sub = patterns.find(([re]) => new RegExp(re, 'u').test(key))?.[1];
    if (isRec(sub)) warnBareDurations(sub, value, issues, [...path, key]);
  }
}
