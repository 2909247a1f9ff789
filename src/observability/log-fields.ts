// Fields a filter adds to its request's access-log line (the WAF: matched rule ids and the
// anomaly score). Set while the request runs; the access log spreads them into the line.
import { type RequestContext, stateKey } from '../pipeline/types.js';

export const ACCESS_LOG_FIELDS = stateKey<Record<string, unknown>>('access_log.fields');

export function addAccessLogFields(ctx: RequestContext, fields: Record<string, unknown>): void {
  const cur = ctx.get(ACCESS_LOG_FIELDS);
  if (cur === undefined) ctx.set(ACCESS_LOG_FIELDS, { ...fields });
  else Object.assign(cur, fields);
}
