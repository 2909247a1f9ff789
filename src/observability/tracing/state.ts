// The trace a request belongs to, in its typed state slot (set by the tracer when tracing is on).
// A module of its own so that the access log can read the trace id without loading the tracer.
import { stateKey, type RequestContext } from '../../pipeline/types.js';

export interface RequestTraceIds {
  readonly traceId: string;
  /** usher's server span id (recorded or not). */
  readonly spanId: string;
  readonly sampled: boolean;
}

export const kTrace = stateKey<RequestTraceIds>('trace');

/** The request's trace id, or null when tracing is off. */
export function traceIdOf(ctx: RequestContext): string | null {
  return ctx.get(kTrace)?.traceId ?? null;
}
