import { describe, expect, it } from 'vitest';
import { createGroupCommit, type GroupCommitOptions } from '../../../src/modules/ledger/group-commit.ts';

// The scheduler alone, with senders that record their calls and finish when the test says: no Postgres.

interface Req {
  user: string;
  n: number;
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const tick = () => new Promise((r) => setImmediate(r));

function harness(overrides: Partial<GroupCommitOptions<Req, string>> = {}) {
  const calls: Req[][] = [];
  const gates: ReturnType<typeof deferred>[] = [];
  const batchErrors: number[] = [];
  /** Each call waits at its gate until released; `release(i)` lets call i return. */
  const gate = async (batch: Req[]) => {
    calls.push(batch);
    const d = deferred();
    gates.push(d);
    await d.promise;
  };
  const scheduler = createGroupCommit<Req, string>({
    maxInFlight: 1,
    maxBatch: 10,
    keyOf: (r) => r.user,
    sendOne: async (r) => {
      await gate([r]);
      return `one:${r.user}:${r.n}`;
    },
    sendMany: async (list) => {
      await gate(list);
      return list.map((r) => `many:${r.user}:${r.n}`);
    },
    onBatchError: (_err, size) => batchErrors.push(size),
    ...overrides,
  });
  const releaseAll = async () => {
    for (let i = 0; i < 50; i++) {
      const open = gates.splice(0);
      if (open.length === 0) {
        await tick();
        if (gates.length === 0) return;
        continue;
      }
      for (const g of open) g.resolve();
      await tick();
    }
  };
  return { scheduler, calls, gates, batchErrors, releaseAll };
}

const shape = (calls: Req[][]) => calls.map((c) => c.map((r) => `${r.user}${r.n}`));

describe('group commit scheduler', () => {
  it('a lone request goes alone and at once', async () => {
    const h = harness();
    const p = h.scheduler.run({ user: 'a', n: 1 });
    expect(shape(h.calls)).toEqual([['a1']]);
    await h.releaseAll();
    expect(await p).toBe('one:a:1');
  });

  it('requests that arrive while the calls are busy wait and leave together, each with its own answer', async () => {
    const h = harness();
    const first = h.scheduler.run({ user: 'a', n: 1 });
    const rest = [
      h.scheduler.run({ user: 'b', n: 2 }),
      h.scheduler.run({ user: 'c', n: 3 }),
      h.scheduler.run({ user: 'b', n: 4 }),
    ];
    expect(h.scheduler.state).toEqual({ waiting: 3, inFlight: 1 });
    await h.releaseAll();
    expect(shape(h.calls)).toEqual([['a1'], ['b2', 'c3', 'b4']]);
    expect(await first).toBe('one:a:1');
    expect(await Promise.all(rest)).toEqual(['many:b:2', 'many:c:3', 'many:b:4']);
    expect(h.scheduler.state).toEqual({ waiting: 0, inFlight: 0 });
  });

  it('a key in a call waits for it even with a free slot; other keys go at once', async () => {
    const h = harness({ maxInFlight: 3 });
    const all = [
      h.scheduler.run({ user: 'a', n: 1 }),
      h.scheduler.run({ user: 'a', n: 2 }),
      h.scheduler.run({ user: 'b', n: 3 }),
      h.scheduler.run({ user: 'a', n: 4 }),
    ];
    // a1 goes; a2 waits for it; b3 takes the second slot; a4 waits behind a2.
    expect(shape(h.calls)).toEqual([['a1'], ['b3']]);
    await h.releaseAll();
    expect(shape(h.calls)).toEqual([['a1'], ['b3'], ['a2', 'a4']]);
    await Promise.all(all);
  });

  it('sends the next call as soon as the database answers, before the answers are handed back', async () => {
    // Callers serialise and write their HTTP responses when their answer comes: the next call must already
    // be in the database by then, or it idles while they do.
    const h = harness();
    const seen: number[] = [];
    const first = h.scheduler.run({ user: 'a', n: 1 }).then(() => seen.push(h.calls.length));
    const waiting = h.scheduler.run({ user: 'b', n: 2 }).then(() => seen.push(h.calls.length));
    const grouped = [h.scheduler.run({ user: 'c', n: 3 }), h.scheduler.run({ user: 'a', n: 4 })];
    expect(shape(h.calls)).toEqual([['a1']]);
    h.gates[0]!.resolve();
    await first;
    expect(shape(h.calls)).toEqual([['a1'], ['b2', 'c3', 'a4']]); // a4 too: a1's call is over
    await h.releaseAll();
    await Promise.all([waiting, ...grouped]);
    expect(seen).toEqual([2, 2]);
  });

  it('never sends more than maxBatch in a call', async () => {
    const h = harness({ maxBatch: 3 });
    const all = Array.from({ length: 8 }, (_, i) => h.scheduler.run({ user: `u${i}`, n: i }));
    await h.releaseAll();
    expect(h.calls.map((c) => c.length)).toEqual([1, 3, 3, 1]);
    await Promise.all(all);
  });

  it('runAll queues a whole list before sending, so it leaves in one call', async () => {
    const h = harness();
    const settled = h.scheduler.runAll([
      { user: 'x', n: 1 },
      { user: 'y', n: 2 },
      { user: 'x', n: 3 },
    ]);
    await h.releaseAll();
    expect(shape(h.calls)).toEqual([['x1', 'y2', 'x3']]);
    expect((await settled).map((s) => (s.status === 'fulfilled' ? s.value : 'rejected'))).toEqual([
      'many:x:1',
      'many:y:2',
      'many:x:3',
    ]);
  });

  it('a call that fails as a whole is retried one by one, so one bad request fails alone', async () => {
    const calls: string[] = [];
    const errors: number[] = [];
    const scheduler = createGroupCommit<Req, string>({
      maxInFlight: 1,
      maxBatch: 10,
      keyOf: (r) => r.user,
      sendOne: async (r) => {
        calls.push(`one ${r.user}`);
        await tick();
        if (r.user === 'bad') throw new Error('boom');
        return `ok ${r.user}`;
      },
      sendMany: async (list) => {
        calls.push(`many ${list.length}`);
        throw new Error('the batch rolled back');
      },
      onBatchError: (_e, size) => errors.push(size),
    });
    const results = await Promise.allSettled([
      scheduler.run({ user: 'first', n: 0 }),
      scheduler.run({ user: 'good', n: 1 }),
      scheduler.run({ user: 'bad', n: 2 }),
      scheduler.run({ user: 'fine', n: 3 }),
    ]);
    expect(calls).toEqual(['one first', 'many 3', 'one good', 'one bad', 'one fine']);
    expect(errors).toEqual([3]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    await tick(); // the call's slot is given back once its last request has settled
    expect(scheduler.state).toEqual({ waiting: 0, inFlight: 0 });
  });

  it('a call failing with an error marked failsWhole (database unavailable) fails all its requests, no retry', async () => {
    const calls: string[] = [];
    const errors: number[] = [];
    const down = Object.assign(new Error('Connection terminated'), { down: true });
    const scheduler = createGroupCommit<Req, string>({
      maxInFlight: 1,
      maxBatch: 10,
      keyOf: (r) => r.user,
      sendOne: async (r) => {
        calls.push(`one ${r.user}`);
        await tick();
        return `ok ${r.user}`;
      },
      sendMany: async (list) => {
        calls.push(`many ${list.length}`);
        throw down;
      },
      onBatchError: (_e, size) => errors.push(size),
      failsWhole: (err) => (err as { down?: boolean }).down === true,
    });
    const results = await Promise.allSettled([
      scheduler.run({ user: 'first', n: 0 }),
      scheduler.run({ user: 'a', n: 1 }),
      scheduler.run({ user: 'b', n: 2 }),
      scheduler.run({ user: 'c', n: 3 }),
    ]);
    expect(calls).toEqual(['one first', 'many 3']);
    expect(errors).toEqual([]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const r of results.slice(1)) expect((r as PromiseRejectedResult).reason).toBe(down);
    await tick();
    expect(scheduler.state).toEqual({ waiting: 0, inFlight: 0 });
  });

  it('a grouped call that answers too few results rejects the unanswered ones only', async () => {
    const scheduler = createGroupCommit<Req, string>({
      maxInFlight: 1,
      maxBatch: 10,
      keyOf: (r) => r.user,
      sendOne: async (r) => {
        await tick();
        return `one ${r.n}`;
      },
      sendMany: async (list) => list.slice(0, 1).map((r) => `many ${r.n}`),
    });
    const results = await Promise.allSettled([0, 1, 2].map((n) => scheduler.run({ user: `u${n}`, n })));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'rejected'))).toEqual([
      'one 0',
      'many 1',
      'rejected',
    ]);
  });

  it('refuses a nonsensical configuration', () => {
    expect(() =>
      createGroupCommit<Req, string>({
        maxInFlight: 0,
        maxBatch: 1,
        keyOf: (r) => r.user,
        sendOne: async () => '',
        sendMany: async () => [],
      }),
    ).toThrow(RangeError);
  });
});
