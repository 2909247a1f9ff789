// The retry decision (src/proxy/retry-decision.ts) as a table: one row per rule the README states
// (README "Retries" under Upstreams, and "Failures explain themselves"), each with the decision
// and whether the retry spends a budget token. The policy is the real one, built from a config,
// so that the README's defaults (`on: 502, 503, 504, reset`, 2 attempts) are pinned too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideRetry, isIdempotent, usesBudget, type RetryDecision, type RetryFacts } from '../../src/proxy/retry-decision.js';
import { RetryPolicy } from '../../src/upstream/retry.js';
import { config } from '../helpers/usher.js';

function policy(retry: Record<string, unknown> = {}): RetryPolicy {
  const c = config({ upstreams: { app: { servers: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], retry } }, routes: [{ upstream: 'app' }] });
  return new RetryPolicy(c.upstreams.app!.retry);
}

const DEFAULT = policy();
const ONLY_503 = policy({ on: [503] });
const NO_RESET = policy({ on: [502, 503, 504] });
const NO_504 = policy({ on: [502, 503, 'reset'] });
const NEVER = policy({ attempts: 0 });

/** A first try of a GET without a body that failed after it was sent: the baseline each row edits. */
const BASE: RetryFacts = {
  reason: 'upstream_reset',
  status: undefined,
  connected: true,
  responseStarted: false,
  method: 'GET',
  bodyReplayable: true,
  attempt: 0,
  policy: DEFAULT,
  untried: true,
  budgetLeft: true,
};

const CONNECT_FAILURES = ['upstream_connect_refused', 'upstream_connect_timeout', 'upstream_connect_failed'] as const;
const NON_IDEMPOTENT = ['POST', 'PATCH', 'CONNECT', 'LOCK'];
const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'];

interface Row {
  rule: string;
  facts: Partial<RetryFacts>;
  decision: RetryDecision;
  /** Whether a retry spends a budget token (only asked when the decision is not "no"). */
  budget?: boolean;
}

const rows: Row[] = [
  // "A failed connection is always retried (nothing was sent)": any method, body or not, at once,
  // outside the budget ("connection failures are not counted: they load no server").
  ...CONNECT_FAILURES.flatMap((reason): Row[] =>
    [...IDEMPOTENT, ...NON_IDEMPOTENT].flatMap((method): Row[] => [
      { rule: `connect failure ${reason}, ${method}: at once`, facts: { reason, method, connected: false }, decision: 'now', budget: false },
      { rule: `connect failure ${reason}, ${method} with a streamed body: nothing was sent`, facts: { reason, method, connected: false, bodyReplayable: false }, decision: 'now', budget: false },
      { rule: `connect failure ${reason}, ${method}, budget empty: still retried`, facts: { reason, method, connected: false, budgetLeft: false }, decision: 'now', budget: false },
    ]),
  ),
  // ...also when `on` does not list the failure: `on` is about failures after the request was sent.
  { rule: 'connect failure with `on: [503]`', facts: { reason: 'upstream_connect_refused', connected: false, policy: ONLY_503 }, decision: 'now', budget: false },
  // The same socket error on a connection in use (ETIMEDOUT, EHOSTUNREACH) may have sent bytes.
  { rule: 'a "connect" error after the try had a connection is not a connect failure', facts: { reason: 'upstream_connect_failed', connected: true }, decision: 'no' },
  { rule: 'a connect-class error on a connected POST', facts: { reason: 'upstream_connect_refused', connected: true, method: 'POST' }, decision: 'no' },

  // "Nothing is retried once response headers went to the client."
  { rule: 'response started: connect failure', facts: { reason: 'upstream_connect_refused', connected: false, responseStarted: true }, decision: 'no' },
  { rule: 'response started: reset', facts: { responseStarted: true }, decision: 'no' },
  { rule: 'response started: body timeout', facts: { reason: 'upstream_body_timeout', responseStarted: true }, decision: 'no' },
  { rule: 'response started: 503', facts: { reason: 'upstream_bad_response', status: 503, responseStarted: true }, decision: 'no' },

  // "After the request was sent, only idempotent methods ... are retried" — POST never after connect.
  ...NON_IDEMPOTENT.flatMap((method): Row[] => [
    { rule: `${method} reset after connect`, facts: { method }, decision: 'no' },
    { rule: `${method} timeout after connect`, facts: { method, reason: 'upstream_timeout' }, decision: 'no' },
    { rule: `${method} answered 503`, facts: { method, reason: 'upstream_bad_response', status: 503 }, decision: 'no' },
  ]),
  ...IDEMPOTENT.flatMap((method): Row[] => [
    { rule: `${method} reset after connect, "reset" in on: after backoff`, facts: { method }, decision: 'backoff', budget: true },
    { rule: `${method} answered 502 (default on): after backoff`, facts: { method, reason: 'upstream_bad_response', status: 502 }, decision: 'backoff', budget: true },
  ]),

  // "A request body is replayed only if it was buffered."
  { rule: 'GET with a streamed body, reset after connect', facts: { bodyReplayable: false }, decision: 'no' },
  { rule: 'PUT with a streamed body, answered 503', facts: { method: 'PUT', bodyReplayable: false, reason: 'upstream_bad_response', status: 503 }, decision: 'no' },
  { rule: 'PUT with a buffered body, answered 503', facts: { method: 'PUT', reason: 'upstream_bad_response', status: 503 }, decision: 'backoff', budget: true },

  // "on the statuses and errors in retry.on (default 502, 503, 504 and reset; a timeout counts as 504)"
  { rule: 'reset without "reset" in on', facts: { policy: NO_RESET }, decision: 'no' },
  { rule: 'timeout with 504 in on (default): a timeout counts as 504', facts: { reason: 'upstream_timeout' }, decision: 'backoff', budget: true },
  { rule: 'timeout without 504 in on', facts: { reason: 'upstream_timeout', policy: NO_504 }, decision: 'no' },
  { rule: 'timeout with only 503 in on', facts: { reason: 'upstream_timeout', policy: ONLY_503 }, decision: 'no' },
  { rule: 'a malformed response (no status) is not in on', facts: { reason: 'upstream_bad_response' }, decision: 'no' },
  { rule: 'a body timeout is not in on', facts: { reason: 'upstream_body_timeout' }, decision: 'no' },
  { rule: 'a TLS failure after connect is not in on', facts: { reason: 'upstream_tls_failed' }, decision: 'no' },

  // A 5xx status only when configured.
  ...[502, 503, 504].map((status): Row => ({ rule: `${status} with the default on`, facts: { reason: 'upstream_bad_response', status }, decision: 'backoff', budget: true })),
  ...[500, 501, 505, 507, 599].map((status): Row => ({ rule: `${status} is not in the default on`, facts: { reason: 'upstream_bad_response', status }, decision: 'no' })),
  { rule: '503 with on: [503]', facts: { reason: 'upstream_bad_response', status: 503, policy: ONLY_503 }, decision: 'backoff', budget: true },
  { rule: '502 with on: [503]', facts: { reason: 'upstream_bad_response', status: 502, policy: ONLY_503 }, decision: 'no' },
  { rule: 'reset with on: [503]', facts: { policy: ONLY_503 }, decision: 'no' },

  // "...with exponential backoff": a connected failure waits, a connect failure does not.
  { rule: 'connected reset waits for the backoff', facts: {}, decision: 'backoff', budget: true },
  { rule: 'a retry after the first (attempt 1 of 2) still waits', facts: { attempt: 1 }, decision: 'backoff', budget: true },

  // "only while retries stay within retry.budget.percent": an empty budget stops all but connect failures.
  { rule: 'budget empty: reset', facts: { budgetLeft: false }, decision: 'no' },
  { rule: 'budget empty: timeout', facts: { reason: 'upstream_timeout', budgetLeft: false }, decision: 'no' },
  { rule: 'budget empty: 503', facts: { reason: 'upstream_bad_response', status: 503, budgetLeft: false }, decision: 'no' },

  // `attempts`: the most retries after the first try (2 by default; 0: never retry).
  { rule: 'attempts spent (2 of 2): reset', facts: { attempt: 2 }, decision: 'no' },
  { rule: 'attempts spent (2 of 2): connect failure', facts: { attempt: 2, reason: 'upstream_connect_refused', connected: false }, decision: 'no' },
  { rule: 'attempts spent (2 of 2): 503', facts: { attempt: 2, reason: 'upstream_bad_response', status: 503 }, decision: 'no' },
  { rule: 'attempts: 0 never retries, not even a connect failure', facts: { policy: NEVER, reason: 'upstream_connect_refused', connected: false }, decision: 'no' },
  { rule: 'attempts: 0 never retries a 503', facts: { policy: NEVER, reason: 'upstream_bad_response', status: 503 }, decision: 'no' },

  // "Retries go to a server the request has not tried yet": none left, no retry.
  { rule: 'no untried server: connect failure', facts: { untried: false, reason: 'upstream_connect_refused', connected: false }, decision: 'no' },
  { rule: 'no untried server: reset', facts: { untried: false }, decision: 'no' },
  { rule: 'no untried server: 503', facts: { untried: false, reason: 'upstream_bad_response', status: 503 }, decision: 'no' },
];

test('retry decision: every README rule, as a table', () => {
  for (const row of rows) {
    const facts: RetryFacts = { ...BASE, ...row.facts };
    assert.equal(decideRetry(facts), row.decision, row.rule);
    if (row.decision !== 'no') assert.equal(usesBudget(facts), row.budget, `${row.rule}: budget`);
  }
});

test('retry decision: the README defaults are what the table assumed', () => {
  assert.equal(DEFAULT.attempts, 2);
  for (const s of [502, 503, 504]) assert.equal(DEFAULT.retriesStatus(s), true, String(s));
  assert.equal(DEFAULT.retriesStatus(500), false);
  assert.equal(DEFAULT.retriesReason('upstream_reset'), true);
  assert.equal(DEFAULT.retriesReason('upstream_timeout'), true, 'a timeout counts as 504');
});

test('retry decision: the idempotent methods are the README list (RFC 9110 §9.2.2; method names are case-sensitive, §9.1)', () => {
  for (const m of IDEMPOTENT) assert.equal(isIdempotent(m), true, m);
  for (const m of [...NON_IDEMPOTENT, 'get', 'PROPFIND']) assert.equal(isIdempotent(m), false, m);
});
