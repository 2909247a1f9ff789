import { performance } from 'node:perf_hooks';

/**
 * Slow start (Envoy's slow_start_config, HAProxy's `slowstart`): an endpoint that becomes
 * healthy again takes a share of traffic that grows linearly from 10% of its weight to all of
 * it over the window, so a cold cache or JIT is not hit with a full load at once. Only the
 * recovery path starts a ramp: endpoints are at full weight when usher starts.
 */
export class SlowStart {
  private readonly window: number;
  private startedAt = 0;
  active = false;

  constructor(windowMs: number) {
    this.window = windowMs;
  }

  /** Bound so the health state can call it directly. */
  readonly begin = (): void => {
    if (this.window <= 0) return;
    this.startedAt = performance.now();
    this.active = true;
  };

  scale(weight: number): number {
    const elapsed = performance.now() - this.startedAt;
    if (elapsed >= this.window) {
      this.active = false;
      return weight;
    }
    return weight * Math.max(0.1, elapsed / this.window);
  }
}
