// Passive health (Envoy's outlier detection): the proxy stage reports how each request to an
// endpoint went; consecutive 5xx (and failures after connecting) or consecutive connect
// failures eject the endpoint for base_ejection_time × the number of times it has been ejected
// (capped at max_ejection_time), at most max_ejection_percent of the upstream at once. It
// returns on its own when the time is up, or when an active check passes (readmit_on_check);
// the first success clears the streaks. On by default (see the schema for why).
import type { OutlierConfig } from '../config/types.js';
import type { EndpointHealth } from './state.js';

export interface OutlierSubject {
  readonly health: EndpointHealth;
  /** Streak counters, kept on the endpoint so reporting allocates nothing. */
  outlier5xx: number;
  outlierConnect: number;
  outlierTimer: NodeJS.Timeout | null;
}

export class OutlierDetector {
  private readonly config: OutlierConfig;
  private subjects: readonly OutlierSubject[];
  private closed = false;

  constructor(subjects: readonly OutlierSubject[], config: OutlierConfig) {
    this.subjects = subjects;
    this.config = config;
  }

  /** DNS discovery changed the endpoint set (the share of ejected ones is over the new set). */
  setSubjects(subjects: readonly OutlierSubject[]): void {
    this.subjects = subjects;
  }

  success(e: OutlierSubject): void {
    e.outlier5xx = 0;
    e.outlierConnect = 0;
  }

  /** A 5xx response, or a reset/timeout after the connection was made. */
  serverError(e: OutlierSubject, what: string): void {
    if (++e.outlier5xx >= this.config.consecutive_5xx) this.eject(e, `${e.outlier5xx} consecutive failures (last: ${what})`);
  }

  connectFailure(e: OutlierSubject, what: string): void {
    if (++e.outlierConnect >= this.config.consecutive_connect_failures) this.eject(e, `${e.outlierConnect} consecutive connect failures (last: ${what})`);
  }

  private eject(e: OutlierSubject, reason: string): void {
    e.outlier5xx = 0;
    e.outlierConnect = 0;
    if (this.closed || e.health.ejected) return;
    let ejected = 0;
    for (const s of this.subjects) if (s.health.ejected) ejected++;
    // At least one may always go; beyond that, stay within max_ejection_percent of the upstream.
    const allowed = Math.max(1, Math.floor((this.subjects.length * this.config.max_ejection_percent) / 100));
    if (ejected + 1 > allowed) return;
    const time = Math.min(this.config.base_ejection_time * (e.health.ejections + 1), Math.max(this.config.max_ejection_time, this.config.base_ejection_time));
    e.health.eject(Date.now() + time, reason);
    e.outlierTimer = setTimeout(readmit, time, e);
    e.outlierTimer.unref();
  }

  /**
   * An active check passed: with readmit_on_check, an ejected server is back now rather than
   * when its ejection time ends (HAProxy readmits on a passing check). Its ejection count stays,
   * so a server that fails again is ejected for longer.
   */
  checkPassed(e: OutlierSubject): void {
    if (this.closed || !this.config.readmit_on_check || !e.health.ejected) return;
    if (e.outlierTimer !== null) clearTimeout(e.outlierTimer);
    e.outlierTimer = null;
    e.health.readmit('active check passed');
  }

  /** An endpoint that arrived ejected (health inherited over a reload): readmit it when its time is up. */
  resume(e: OutlierSubject): void {
    if (this.closed || !e.health.ejected) return;
    e.outlierTimer = setTimeout(readmit, Math.max(0, e.health.ejectedUntil - Date.now()), e);
    e.outlierTimer.unref();
  }

  close(): void {
    this.closed = true;
    for (const s of this.subjects) {
      if (s.outlierTimer !== null) clearTimeout(s.outlierTimer);
      s.outlierTimer = null;
    }
  }
}

function readmit(e: OutlierSubject): void {
  e.outlierTimer = null;
  e.health.readmit('ejection time over');
}
