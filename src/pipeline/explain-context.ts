// The context `usher explain` runs a route's compiled chain with: the request as given on the
// command line, `explaining` set so that hooks send, count and store nothing.
import type { RouteRequest } from '../router/request.js';
import type { BodyObserver, CompiledRoute, RequestContext, StateKey, Timings } from './types.js';

export class ExplainContext implements RequestContext {
  readonly requestId = '(request id)';
  readonly httpVersion = '1.1' as const;
  readonly clientPort = 0;
  readonly tls = undefined;
  readonly upgrade = undefined;
  readonly response = undefined;
  readonly reason = undefined;
  readonly explaining = true;
  readonly timings: Timings = { start: 0, routed: 0, upstreamStart: undefined, responseStart: undefined, end: undefined };
  upstream: { name: string | undefined; server: string | undefined; attempts: number } = { name: undefined, server: undefined, attempts: 0 };
  private readonly slots: unknown[] = [];

  constructor(
    readonly method: string,
    readonly target: string,
    readonly scheme: 'http' | 'https',
    readonly headers: readonly string[],
    readonly clientIp: string,
    readonly request: RouteRequest,
    readonly route: CompiledRoute,
    readonly clientAddress: string = clientIp,
  ) {}

  header(name: string): string | undefined {
    return this.request.header(name);
  }
  get<T>(key: StateKey<T>): T | undefined {
    return this.slots[key.id] as T | undefined;
  }
  set<T>(key: StateKey<T>, value: T): void {
    this.slots[key.id] = value;
  }
  observeRequestBody(_observer: BodyObserver): boolean {
    return false;
  }
}
