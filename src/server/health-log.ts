import diagnostics from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { ENDPOINTS_CHANNEL, HEALTH_CHANNEL, type EndpointsEvent, type HealthEvent } from '../upstream/health/state.js';
import type { Runtime } from './runtime.js';

/**
 * Logs the server-set changes made by DNS discovery (info) and the health changes of this usher's upstream servers (published by the health producers
 * on a diagnostics channel): "unhealthy" as a warning, "healthy again" as info, with the reason.
 * Returns the unsubscribe function.
 */
export function logHealthEvents(owner: { readonly logger: Logger; readonly runtime: Runtime }): () => void {
  const onEvent = (message: unknown): void => {
    const ev = message as HealthEvent;
    // Several ushers may share a process (tests): log only the events of our own endpoints.
    const cluster = owner.runtime.clusters.get(ev.upstream);
    if (cluster === undefined || !cluster.endpoints.some((e) => e.health === ev.state)) return;
    const fields = { upstream: ev.upstream, server: ev.endpoint, healthy: ev.healthy, source: ev.source, reason: ev.reason, ejections: ev.ejections };
    if (!ev.changed) owner.logger.debug(fields, ev.source === 'active' ? 'active check verdict changed' : 'outlier ejection changed');
    else if (ev.healthy) owner.logger.info(fields, 'upstream server healthy');
    else owner.logger.warn(fields, 'upstream server unhealthy');
  };
  const onEndpoints = (message: unknown): void => {
    const ev = message as EndpointsEvent;
    if (owner.runtime.clusters.get(ev.upstream) !== ev.cluster) return;
    owner.logger.info({ upstream: ev.upstream, servers: ev.servers, added: ev.added, removed: ev.removed }, 'upstream servers changed (DNS)');
  };
  diagnostics.subscribe(HEALTH_CHANNEL, onEvent);
  diagnostics.subscribe(ENDPOINTS_CHANNEL, onEndpoints);
  return () => {
    diagnostics.unsubscribe(HEALTH_CHANNEL, onEvent);
    diagnostics.unsubscribe(ENDPOINTS_CHANNEL, onEndpoints);
  };
}
