// The health of one endpoint, as its producers report it: active checks (health/active.ts, or
// in a later multi-process setup a single prober that publishes results) and passive outlier
// detection (health/outlier.ts). The balancers only ever see the result through available().
// Every change is published on a diagnostics channel — the logger subscribes, and the admin
// API will — and the last reason stays here for whoever asks.
import diagnostics from 'node:diagnostics_channel';

/** Published on every health change of an endpoint. */
export const HEALTH_CHANNEL = 'usher:upstream:health';
export const healthChannel = diagnostics.channel(HEALTH_CHANNEL);

/** Published when discovery changes an upstream's set of servers: { upstream, cluster, servers }. */
export const ENDPOINTS_CHANNEL = 'usher:upstream:endpoints';
export const endpointsChannel = diagnostics.channel(ENDPOINTS_CHANNEL);

export interface EndpointsEvent {
  readonly upstream: string;
  /** The Cluster object (tells apart ushers sharing a process). */
  readonly cluster: unknown;
  readonly servers: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** Published for every active health check result (the local checker's, or one fed in with Cluster.applyProbe). */
export const PROBE_CHANNEL = 'usher:upstream:probe';
export const probeChannel = diagnostics.channel(PROBE_CHANNEL);

export interface ProbeEvent {
  /** The Cluster and Endpoint objects (metrics bind their series to them once). */
  readonly cluster: unknown;
  readonly endpoint: unknown;
  readonly upstream: string;
  readonly server: string;
  readonly ok: boolean;
  readonly detail: string;
  /** null when the result was fed in from outside without one. */
  readonly latencyMs: number | null;
}

export type HealthSource = 'active' | 'passive';

export interface HealthEvent {
  readonly upstream: string;
  readonly endpoint: string;
  readonly healthy: boolean;
  /** Whether `healthy` flipped (false: one producer changed its verdict, the result did not change). */
  readonly changed: boolean;
  readonly source: HealthSource;
  /** "status 503", "timeout", "refused", "body mismatch", "5 consecutive 5xx", "ejection over"... */
  readonly reason: string;
  /** How many times passive detection has ejected it so far. */
  readonly ejections: number;
  /** The state object itself (tells apart endpoints of different usher instances in one process). */
  readonly state: EndpointHealth;
}

export class EndpointHealth {
  readonly upstream: string;
  readonly endpoint: string;
  /** Result of active checks (true until a check says otherwise). */
  activeUp = true;
  /** Ejected by outlier detection until `ejectedUntil` (epoch ms). */
  ejected = false;
  ejectedUntil = 0;
  ejections = 0;
  /** Why the state last changed, and when (epoch ms) — for the admin API. */
  reason = 'initial';
  changedAt = Date.now();
  /** The last active probe: when (epoch ms), whether it passed and what it saw. */
  lastCheck: { at: number; ok: boolean; detail: string; latencyMs: number | null } | null = null;
  /** Called when the endpoint becomes healthy again (slow start begins). */
  onRecover: (() => void) | null = null;

  constructor(upstream: string, endpoint: string) {
    this.upstream = upstream;
    this.endpoint = endpoint;
  }

  /**
   * Takes over the state of the same server in the cluster this one replaces (a reload that
   * changed the upstream): a server known to be down or ejected stays so. No event: nothing
   * changed. `active`: the new config still has active checks (otherwise their verdict is void).
   */
  inherit(from: EndpointHealth, active: boolean): void {
    this.activeUp = active ? from.activeUp : true;
    this.ejected = from.ejected;
    this.ejectedUntil = from.ejectedUntil;
    this.ejections = from.ejections;
    this.reason = from.reason;
    this.changedAt = from.changedAt;
    this.lastCheck = from.lastCheck;
  }

  get up(): boolean {
    return this.activeUp && !this.ejected;
  }

  setActive(up: boolean, reason: string): void {
    if (this.activeUp === up) return;
    const was = this.up;
    this.activeUp = up;
    this.changed(was, 'active', reason);
  }

  eject(untilMs: number, reason: string): void {
    const was = this.up;
    this.ejected = true;
    this.ejectedUntil = untilMs;
    this.ejections++;
    this.changed(was, 'passive', reason);
  }

  readmit(reason: string): void {
    if (!this.ejected) return;
    const was = this.up;
    this.ejected = false;
    this.changed(was, 'passive', reason);
  }

  private changed(was: boolean, source: HealthSource, reason: string): void {
    this.reason = reason;
    this.changedAt = Date.now();
    const now = this.up;
    if (now && !was) this.onRecover?.();
    if (healthChannel.hasSubscribers) {
      const event: HealthEvent = { upstream: this.upstream, endpoint: this.endpoint, healthy: now, changed: now !== was, source, reason, ejections: this.ejections, state: this };
      healthChannel.publish(event);
    }
  }
}
