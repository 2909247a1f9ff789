// The runner: walks one phase's hooks in order. A hook may return a value or a promise; only a
// real promise is awaited (Fastify's rule), so an all-synchronous chain costs no microtask and
// allocates nothing. Each function returns true when every hook ran synchronously and the
// request goes on at once; false when the host has taken over — a local reply, a failed hook
// (→ 500 internal_error, logged with the filter's name), or a pending promise, after which the
// host is called back with resume(phase, index of the next hook).
import type { Filter, LocalResponse, PhaseName, RequestContext, ResponseHead, UpstreamRequestHead } from './types.js';

export interface PhaseHost extends RequestContext {
  /** `filter`'s hook in `phase` answered: the reply then passes `response` and `done` like any other. */
  hookReplied(reply: LocalResponse, filter: Filter, phase: PhaseName): void;
  /** A hook threw or its promise rejected. */
  hookFailed(filter: Filter, phase: PhaseName, err: unknown): void;
  /** An awaited hook resolved without a reply: go on from hook `next` of `phase`. */
  resume(phase: PhaseName, next: number): void;
}

function isPromise(v: unknown): v is Promise<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** The request-side phases whose hooks may answer with a LocalResponse. */
export type ReplyPhase = 'early_request' | 'request' | 'upstream_request';

/** early_request, request or upstream_request (which also edits `head`). */
export function runRequestHooks(host: PhaseHost, phase: ReplyPhase, filters: readonly Filter[], from: number, head?: UpstreamRequestHead): boolean {
  for (let i = from; i < filters.length; i++) {
    const f = filters[i]!;
    let r;
    try {
      r = phase === 'request' ? f.request!(host) : phase === 'upstream_request' ? f.upstreamRequest!(host, head!) : f.earlyRequest!(host);
    } catch (err) {
      host.hookFailed(f, phase, err);
      return false;
    }
    if (r === undefined || r === null) continue;
    if (isPromise(r)) {
      const next = i + 1;
      // Promise.resolve: a native promise as it is; a thenable whose then() throws rejects.
      Promise.resolve(r).then(
        (v) => (v === undefined || v === null ? host.resume(phase, next) : host.hookReplied(v, f, phase)),
        (err: unknown) => host.hookFailed(f, phase, err),
      );
      return false;
    }
    host.hookReplied(r, f, phase);
    return false;
  }
  return true;
}

/** upstream_response or response: edits to a response head. */
export function runHeadHooks(host: PhaseHost, phase: 'upstream_response' | 'response', filters: readonly Filter[], from: number, head: ResponseHead): boolean {
  for (let i = from; i < filters.length; i++) {
    const f = filters[i]!;
    let r;
    try {
      r = phase === 'response' ? f.response!(host, head) : f.upstreamResponse!(host, head);
    } catch (err) {
      host.hookFailed(f, phase, err);
      return false;
    }
    if (isPromise(r)) {
      awaitHook(host, f, phase, i + 1, r);
      return false;
    }
  }
  return true;
}

function awaitHook(host: PhaseHost, f: Filter, phase: PhaseName, next: number, p: Promise<unknown>): void {
  Promise.resolve(p).then(
    () => host.resume(phase, next),
    (err: unknown) => host.hookFailed(f, phase, err),
  );
}

/** done: every hook, whatever the others do; a throw is reported and the rest still run. */
export function runDoneHooks<C extends RequestContext>(ctx: C, filters: readonly Filter[], failed: (ctx: C, f: Filter, err: unknown) => void): void {
  for (let i = 0; i < filters.length; i++) {
    try {
      filters[i]!.done!(ctx);
    } catch (err) {
      failed(ctx, filters[i]!, err);
    }
  }
}
