// Interim (1xx) responses from an upstream, RFC 9110 §15.2.
import type { ServerResponse } from 'node:http';
import { filterResponseHeaders, type ForwardSettings } from './headers.js';

/** 100 is answered by usher itself; 103 and 102 are relayed. */
export function relayInterim(res: ServerResponse, status: number, raw: readonly (Buffer | string)[], settings: ForwardSettings): void {
  if (status === 103) {
    const fields: string[] = [];
    filterResponseHeaders(raw, settings, fields);
    const hints: Record<string, string | string[]> = Object.create(null);
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!.toLowerCase();
      const prev = hints[name];
      hints[name] = prev === undefined ? fields[i + 1]! : Array.isArray(prev) ? [...prev, fields[i + 1]!] : [prev, fields[i + 1]!];
    }
    if (hints.link === undefined) return;
    try {
      res.writeEarlyHints(hints);
    } catch {
      // node:http refuses some Link values (e.g. several links in one field); hints are optional.
    }
  } else if (status === 102) {
    // Http2ServerResponse has no writeProcessing (102 is obsolete, RFC 9110 §15.2).
    if (typeof res.writeProcessing === 'function') res.writeProcessing();
  }
}
