// The runner (src/pipeline/runner.ts) against a fake host: the order of hooks, the sync/async
// mix (an all-sync chain allocates no promise), short-circuits, failures named by filter and
// phase, the resume index after an awaited hook, and a done phase that runs every hook.
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { test } from 'node:test';
import { runDoneHooks, runHeadHooks, runRequestHooks, type PhaseHost } from '../../src/pipeline/runner.js';
import type { Filter, LocalResponse, PhaseName, ResponseHead, StateKey, Timings, UpstreamRequestHead } from '../../src/pipeline/types.js';

type Phase = 'early_request' | 'request' | 'upstream_request' | 'upstream_response' | 'response';

/**
 * A host as the exchange is one: resume() runs the same phase again from the index it is given,
 * and `completed` says the phase ran to its end (the runner returned true at some point).
 */
class FakeHost implements PhaseHost {
  readonly requestId = 'req-1';
  readonly method = 'GET';
  readonly target = '/';
  readonly httpVersion = '1.1' as const;
  readonly scheme = 'http' as const;
  readonly headers: readonly string[] = ['host', 'a.test'];
  readonly clientIp = '127.0.0.1';
  readonly clientAddress = '127.0.0.1';
  readonly clientPort = 1;
  readonly tls = undefined;
  readonly upgrade = undefined;
  readonly request = undefined;
  readonly route = undefined;
  readonly upstream = { name: undefined, server: undefined, attempts: 0 };
  readonly response = undefined;
  readonly reason = undefined;
  readonly explaining = false;
  readonly timings: Timings = { start: 0, routed: undefined, upstreamStart: undefined, responseStart: undefined, end: undefined };
  readonly replies: LocalResponse[] = [];
  /** Who answered: "filter/phase" per reply. */
  readonly repliedBy: string[] = [];
  readonly failures: { filter: string; phase: PhaseName; err: unknown }[] = [];
  readonly resumes: { phase: PhaseName; next: number }[] = [];
  completed = false;
  private settle: (() => void) | null = null;
  /** Resolves once the phase ended: completed, replied or failed. */
  readonly settled = new Promise<void>((resolve) => (this.settle = resolve));
  private readonly slots: unknown[] = [];
  readonly upstreamHead: UpstreamRequestHead = { method: 'GET', target: '/', headers: [] };
  readonly responseHead: ResponseHead = { status: 200, headers: [], local: false };

  constructor(
    private readonly filters: readonly Filter[],
    readonly trace: string[] = [],
  ) {}

  header(name: string): string | undefined {
    return name === 'host' ? 'a.test' : undefined;
  }
  get<T>(key: StateKey<T>): T | undefined {
    return this.slots[key.id] as T | undefined;
  }
  set<T>(key: StateKey<T>, value: T): void {
    this.slots[key.id] = value;
  }
  observeRequestBody(): boolean {
    return false;
  }

  /** Runs `phase` from hook `from`, as the exchange does; true when it completed synchronously. */
  run(phase: Phase, from = 0): boolean {
    let ok: boolean;
    if (phase === 'early_request' || phase === 'request' || phase === 'upstream_request') ok = runRequestHooks(this, phase, this.filters, from, this.upstreamHead);
    else ok = runHeadHooks(this, phase, this.filters, from, this.responseHead);
    if (ok) {
      this.completed = true;
      this.settle!();
    }
    return ok;
  }

  hookReplied(reply: LocalResponse, filter: Filter, phase: PhaseName): void {
    this.replies.push(reply);
    this.repliedBy.push(`${filter.name}/${phase}`);
    this.settle!();
  }
  hookFailed(filter: Filter, phase: PhaseName, err: unknown): void {
    this.failures.push({ filter: filter.name, phase, err });
    this.settle!();
  }
  resume(phase: PhaseName, next: number): void {
    this.resumes.push({ phase, next });
    this.run(phase as Phase, next);
  }
}

/** What a filter's hook does when called: go on, go on later, answer (now or later), throw, reject. */
type Behaviour = 'sync' | 'async' | 'reply' | 'async-reply' | 'throw' | 'reject';

const REPLY: LocalResponse = { status: 401, headers: ['www-authenticate', 'Basic'], body: 'no', reason: 'local_response' };

/** A filter named `name` whose hook for `phase` behaves as `b` and records its call in the host's trace. */
function filter(name: string, phase: Phase, b: Behaviour, trace: string[]): Filter {
  const hook = (): unknown => {
    trace.push(name);
    switch (b) {
      case 'sync':
        return undefined;
      case 'async':
        return new Promise<void>((resolve) => setImmediate(resolve));
      case 'reply':
        return REPLY;
      case 'async-reply':
        return new Promise<LocalResponse>((resolve) => setImmediate(() => resolve(REPLY)));
      case 'throw':
        throw new Error(`${name} threw`);
      case 'reject':
        return new Promise((_, reject) => setImmediate(() => reject(new Error(`${name} rejected`))));
    }
  };
  const key = { early_request: 'earlyRequest', request: 'request', upstream_request: 'upstreamRequest', upstream_response: 'upstreamResponse', response: 'response' }[phase];
  return { name, [key]: hook } as unknown as Filter;
}

/** A host over filters named f0, f1... behaving as `bs` in `phase`. */
function chain(phase: Phase, bs: Behaviour[]): FakeHost {
  const trace: string[] = [];
  return new FakeHost(
    bs.map((b, i) => filter(`f${i}`, phase, b, trace)),
    trace,
  );
}

const ALL: Phase[] = ['early_request', 'request', 'upstream_request', 'upstream_response', 'response'];

test('runner: hooks run in array order, and an all-sync chain completes before the call returns', () => {
  for (const phase of ALL) {
    const host = chain(phase, ['sync', 'sync', 'sync']);
    assert.equal(host.run(phase), true, `${phase}: completed synchronously`);
    assert.deepEqual(host.trace, ['f0', 'f1', 'f2'], phase);
    assert.deepEqual(host.resumes, [], `${phase}: nothing to resume`);
  }
});

test('runner: an all-sync chain allocates no promise (no microtask); an async hook does', () => {
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  const counted = (fn: () => void): number => {
    promises = 0;
    hook.enable();
    try {
      fn();
    } finally {
      hook.disable();
    }
    return promises;
  };
  for (const phase of ALL) {
    const sync = chain(phase, ['sync', 'sync', 'sync', 'sync']);
    assert.equal(
      counted(() => assert.equal(sync.run(phase), true)),
      0,
      `${phase}: no promise for an all-sync chain`,
    );
    // The control: the counter does see the runner awaiting a real promise.
    const mixed = chain(phase, ['sync', 'async']);
    assert.ok(
      counted(() => assert.equal(mixed.run(phase), false)) > 0,
      `${phase}: the async hook's promise is seen`,
    );
  }
});

test('runner: sync and async hooks mixed resume at the hook after the one awaited', async () => {
  for (const phase of ALL) {
    const host = chain(phase, ['sync', 'async', 'sync', 'async', 'sync']);
    assert.equal(host.run(phase), false, `${phase}: paused at the first async hook`);
    assert.deepEqual(host.trace, ['f0', 'f1'], `${phase}: nothing after the pending hook ran yet`);
    await host.settled;
    assert.equal(host.completed, true, phase);
    assert.deepEqual(host.trace, ['f0', 'f1', 'f2', 'f3', 'f4'], `${phase}: each hook once, in order`);
    assert.deepEqual(
      host.resumes,
      [
        { phase, next: 2 },
        { phase, next: 4 },
      ],
      phase,
    );
    assert.deepEqual(host.failures, []);
  }
});

test('runner: an async last hook resumes at the end of the array (the phase then completes)', async () => {
  for (const phase of ALL) {
    const host = chain(phase, ['sync', 'async']);
    host.run(phase);
    await host.settled;
    assert.deepEqual(host.resumes, [{ phase, next: 2 }], phase);
    assert.equal(host.completed, true, phase);
  }
});

test('runner: resuming from an index skips the hooks before it', () => {
  for (const phase of ALL) {
    const host = chain(phase, ['sync', 'sync', 'sync']);
    assert.equal(host.run(phase, 2), true);
    assert.deepEqual(host.trace, ['f2'], phase);
  }
});

test('runner: a LocalResponse from early_request, request or upstream_request ends the phase (sync and async)', async () => {
  for (const phase of ['early_request', 'request', 'upstream_request'] as const) {
    const sync = chain(phase, ['sync', 'reply', 'sync']);
    assert.equal(sync.run(phase), false, `${phase}: the host took over`);
    assert.deepEqual(sync.trace, ['f0', 'f1'], `${phase}: no hook after the reply`);
    assert.deepEqual(sync.replies, [REPLY], `${phase}: the reply reached the host as given`);
    assert.deepEqual(sync.repliedBy, [`f1/${phase}`], `${phase}: with the filter that made it`);
    assert.equal(sync.completed, false);

    const async = chain(phase, ['async', 'sync', 'async-reply', 'sync']);
    assert.equal(async.run(phase), false);
    await async.settled;
    assert.deepEqual(async.trace, ['f0', 'f1', 'f2'], `${phase}: no hook after the async reply`);
    assert.deepEqual(async.replies, [REPLY]);
    assert.deepEqual(async.repliedBy, [`f2/${phase}`]);
    assert.deepEqual(async.resumes, [{ phase, next: 1 }], `${phase}: a reply is not a resume`);
    assert.equal(async.completed, false);
  }
});

test('runner: null from a request hook means "go on", like undefined', () => {
  const host = new FakeHost([{ name: 'n', request: () => null as unknown as undefined }, { name: 'm', request: () => undefined }]);
  assert.equal(host.run('request'), true);
  assert.deepEqual(host.replies, []);
});

test('runner: a hook that throws or rejects is reported with its filter and phase, and nothing after it runs', async () => {
  for (const phase of ALL) {
    for (const how of ['throw', 'reject'] as const) {
      const host = chain(phase, ['sync', 'async', how, 'sync']);
      assert.equal(host.run(phase), false);
      await host.settled;
      // One more turn: a late extra call (a resume after the failure) would show here.
      await new Promise((r) => setImmediate(r));
      assert.equal(host.failures.length, 1, `${phase}/${how}: reported once`);
      const f = host.failures[0]!;
      assert.equal(f.filter, 'f2', `${phase}/${how}: the failing filter is named`);
      assert.equal(f.phase, phase, `${phase}/${how}: and its phase`);
      assert.match((f.err as Error).message, how === 'throw' ? /f2 threw/ : /f2 rejected/);
      assert.deepEqual(host.trace, ['f0', 'f1', 'f2'], `${phase}/${how}: the chain stopped`);
      assert.equal(host.completed, false);
      assert.deepEqual(host.replies, []);
    }
  }
});

test('runner: a synchronous throw is reported before the call returns', () => {
  for (const phase of ALL) {
    const host = chain(phase, ['throw', 'sync']);
    assert.equal(host.run(phase), false);
    assert.equal(host.failures.length, 1, phase);
    assert.equal(host.failures[0]!.filter, 'f0');
  }
});

test('runner: head hooks see and edit the same head object in order', () => {
  const upstreamRequest: Filter[] = [
    { name: 'a', upstreamRequest: (_c, h) => void h.headers.push('x-a', '1') },
    { name: 'b', upstreamRequest: (_c, h) => void (h.target = `${h.target}b?n=${h.headers.length}`) },
  ];
  const up = new FakeHost(upstreamRequest);
  assert.equal(up.run('upstream_request'), true);
  assert.deepEqual(up.upstreamHead.headers, ['x-a', '1']);
  assert.equal(up.upstreamHead.target, '/b?n=2');

  const response: Filter[] = [
    { name: 'a', response: (_c, h) => void (h.status = 203) },
    { name: 'b', response: (_c, h) => void h.headers.push('x-status', String(h.status)) },
  ];
  const down = new FakeHost(response);
  assert.equal(down.run('response'), true);
  assert.equal(down.responseHead.status, 203);
  assert.deepEqual(down.responseHead.headers, ['x-status', '203']);
});

test('runner: every done hook runs even when one throws; each throw is reported with its filter', () => {
  const ran: string[] = [];
  const filters: Filter[] = ['d0', 'd1', 'd2', 'd3'].map((name) => ({
    name,
    done: () => {
      ran.push(name);
      if (name === 'd1' || name === 'd3') throw new Error(`${name} failed`);
    },
  }));
  const host = new FakeHost(filters);
  const failed: { ctx: unknown; filter: string; err: unknown }[] = [];
  runDoneHooks(host, filters, (ctx, f, err) => failed.push({ ctx, filter: f.name, err }));
  assert.deepEqual(ran, ['d0', 'd1', 'd2', 'd3']);
  assert.deepEqual(
    failed.map((f) => f.filter),
    ['d1', 'd3'],
  );
  assert.equal(failed[0]!.ctx, host, 'the context is handed to the failure callback');
  assert.match((failed[1]!.err as Error).message, /d3 failed/);
});

test('runner: a thenable that is not a promise is awaited like one; one whose then() throws is a failure, not an exception', async () => {
  for (const phase of ALL) {
    const key = { early_request: 'earlyRequest', request: 'request', upstream_request: 'upstreamRequest', upstream_response: 'upstreamResponse', response: 'response' }[phase];
    const good = new FakeHost([{ name: 'thenable', [key]: () => ({ then: (ok: (v: undefined) => void) => setImmediate(() => ok(undefined)) }) } as unknown as Filter]);
    assert.equal(good.run(phase), false);
    await good.settled;
    assert.equal(good.completed, true, `${phase}: resumed after the thenable`);

    const bad = new FakeHost([
      {
        name: 'bad_thenable',
        [key]: () => ({
          then: () => {
            throw new Error('then() threw');
          },
        }),
      } as unknown as Filter,
    ]);
    assert.doesNotThrow(() => bad.run(phase), `${phase}: the runner does not throw`);
    await bad.settled;
    assert.deepEqual(
      bad.failures.map((f) => [f.filter, f.phase]),
      [['bad_thenable', phase]],
    );
  }
});
