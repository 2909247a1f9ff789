// The access log: one JSON line per request, written from the `usher:request:done` event
// (events.ts). It is independent of the process log level.
import diagnostics from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { CHANNELS, type DoneEvent } from './events.js';
import { ACCESS_LOG_FIELDS } from './log-fields.js';

/** Subscribes `log` to this server's done events; returns the unsubscribe function. */
export function subscribeAccessLog(server: unknown, log: Logger): () => void {
  const onDone = (message: unknown): void => {
    const ev = message as DoneEvent;
    if (ev.server !== server) return;
    const ctx = ev.ctx;
    const upstream = ctx.upstream;
    log.info({
      request_id: ctx.requestId,
      client: ctx.clientIp,
      // The client after proxy.trusted_proxies (what access lists judge): differs from `client` behind a trusted proxy.
      client_address: ctx.clientAddress,
      method: ctx.method,
      host: ev.host,
      path: ctx.target,
      status: ev.status,
      bytes_in: ev.bytesIn,
      bytes_out: ev.bytesOut,
      duration_ms: Math.round(ev.durationMs * 1000) / 1000,
      // null rather than undefined: pino drops undefined keys, and every line should have the same keys.
      route: ctx.route?.name ?? null,
      upstream: upstream.server ?? null,
      attempts: upstream.attempts,
      reason: ev.reason,
      // fields a filter added for this request (the WAF's matched rules and score)
      ...ctx.get(ACCESS_LOG_FIELDS),
    });
  };
  diagnostics.subscribe(CHANNELS.done, onDone);
  return () => diagnostics.unsubscribe(CHANNELS.done, onDone);
}
