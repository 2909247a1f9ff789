// Whether a failed upstream try is tried again, and when: one pure function over plain facts,
// pinned by a table test (test/unit/retry-decision.test.ts) that covers every rule the README
// states. The proxy stage gathers the facts; this decides.
import { REASONS, type ReasonCode } from '../errors/index.js';

/** RFC 9110 §9.2.2: methods whose effect is the same however often they are applied. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

export interface RetryPolicyView {
  /** Retries allowed after the first try. */
  readonly attempts: number;
  retriesStatus(status: number): boolean;
  retriesReason(reason: ReasonCode): boolean;
}

export interface RetryFacts {
  /** Why the try failed; for a 5xx answer, the status says it. */
  readonly reason: ReasonCode;
  /** The upstream's status when it answered 5xx (the head was not sent downstream); else undefined. */
  readonly status: number | undefined;
  /** The try had a connection: bytes may have reached the upstream application. */
  readonly connected: boolean;
  /** Response headers went downstream already. */
  readonly responseStarted: boolean;
  readonly method: string;
  /** The request body can be sent again (no body, or buffered whole). */
  readonly bodyReplayable: boolean;
  /** Retries made so far (0 after the first try failed). */
  readonly attempt: number;
  readonly policy: RetryPolicyView;
  /** Some server of the upstream has not been tried by this request. */
  readonly untried: boolean;
  /** The retry budget has a token left (it is charged only when the decision uses it). */
  readonly budgetLeft: boolean;
}

/** now: go to the next server at once; backoff: after the policy's delay; no: answer with the failure. */
export type RetryDecision = 'now' | 'backoff' | 'no';

export function decideRetry(f: RetryFacts): RetryDecision {
  // Never after the response started downstream: the client has part of an answer.
  if (f.responseStarted) return 'no';
  if (f.attempt >= f.policy.attempts || !f.untried) return 'no';
  if (f.status !== undefined) {
    // A 5xx head (nothing relayed): only a replayable idempotent request, on configured statuses.
    return f.policy.retriesStatus(f.status) && f.bodyReplayable && isIdempotent(f.method) && f.budgetLeft ? 'backoff' : 'no';
  }
  // A connect failure sent nothing: any request may go elsewhere, at once, outside the budget.
  // (ETIMEDOUT, EHOSTUNREACH also happen on a connection in use: only a try without one counts.)
  if (REASONS[f.reason].retryable && !f.connected) return 'now';
  // After a connection: idempotent, replayable, on the configured failures, within the budget.
  if (!f.bodyReplayable || !isIdempotent(f.method) || !f.policy.retriesReason(f.reason) || !f.budgetLeft) return 'no';
  return f.connected ? 'backoff' : 'now';
}

/** Whether a retry decided from these facts spends a budget token. */
export function usesBudget(f: RetryFacts): boolean {
  return !(f.status === undefined && REASONS[f.reason].retryable && !f.connected);
}
