import { currentDeadline } from '../../lib/deadline.ts';

/**
 * An in-process group-commit scheduler: requests wait while `maxInFlight` calls are running, or while their
 * key (a user) is in one, and then leave together in one call (one transaction, one commit). At low load each
 * request goes alone, at once. A key is in at most one call at a time, so a busy key's requests leave together
 * and in the order they arrived. Knows nothing of Postgres: the two senders do the work.
 */
export interface GroupCommitOptions<A, R> {
  /** Calls running at once; beyond it, requests wait and share the next call. */
  maxInFlight: number;
  /** The most requests sent in one call. */
  maxBatch: number;
  /** The key a request serialises on (its user): one call at a time per key. */
  keyOf(args: A): string;
  /** Sends one request alone. */
  sendOne(args: A): Promise<R>;
  /** Sends several in one call; one result per request, in the order given. A throw fails the whole call. */
  sendMany(args: A[]): Promise<(R | undefined)[]>;
  /** Every call sent, with how many requests it carried: metrics. */
  onCall?(size: number): void;
  /** A call that failed as a whole (its requests are then retried one by one): logs. */
  onBatchError?(err: unknown, size: number): void;
  /**
   * True for an error after which retrying one by one is pointless (the database is unreachable): the call's
   * requests all fail with it at once instead.
   */
  failsWhole?(err: unknown): boolean;
}

interface Waiting<A, R> {
  args: A;
  resolve(r: R): void;
  reject(e: unknown): void;
}

export interface GroupCommit<A, R> {
  /** Queues one request; resolves with its own result, whichever call carried it. */
  run(args: A): Promise<R>;
  /** Queues several at once, so that they can leave in the same call; each settles on its own. */
  runAll(args: readonly A[]): Promise<PromiseSettledResult<R>[]>;
  /** Requests waiting and calls running: for tests and metrics. */
  readonly state: { waiting: number; inFlight: number };
}

export function createGroupCommit<A, R>(options: GroupCommitOptions<A, R>): GroupCommit<A, R> {
  const { maxInFlight, maxBatch, keyOf, sendOne, sendMany } = options;
  const onCall = options.onCall ?? (() => {});
  const onBatchError = options.onBatchError ?? (() => {});
  const failsWhole = options.failsWhole ?? (() => false);
  if (!(maxInFlight >= 1) || !(maxBatch >= 1)) throw new RangeError('maxInFlight and maxBatch must be >= 1');

  let waiting: Waiting<A, R>[] = [];
  const busy = new Set<string>();
  let inFlight = 0;

  /**
   * Sends one call. `done` frees its keys and its slot, and sends the next call, as soon as the database has
   * answered and before the answers are handed back: the callers' work on their answers (serialising and
   * writing HTTP responses) then runs while the next call is in the database, not before it is sent.
   */
  async function send(batch: Waiting<A, R>[], done: () => void) {
    onCall(batch.length);
    const [only] = batch;
    if (batch.length === 1 && only) {
      let result: R;
      try {
        result = await sendOne(only.args);
      } catch (err) {
        done();
        only.reject(err);
        return;
      }
      done();
      only.resolve(result);
      return;
    }
    let results: (R | undefined)[];
    try {
      results = await sendMany(batch.map((b) => b.args));
    } catch (err) {
      if (failsWhole(err)) {
        done();
        for (const b of batch) b.reject(err);
        return;
      }
      // The call rolled back as a whole; one failing request must not fail the others: one by one.
      onBatchError(err, batch.length);
      for (const b of batch) await sendOne(b.args).then(b.resolve, b.reject);
      done();
      return;
    }
    done();
    batch.forEach((b, i) => {
      const r = results[i];
      if (r !== undefined) b.resolve(r);
      else b.reject(new Error('a grouped call returned too few results'));
    });
  }

  /** The oldest waiting requests whose keys are in no call, up to maxBatch; the rest keep waiting. */
  function takeBatch(): Waiting<A, R>[] {
    const batch: Waiting<A, R>[] = [];
    const rest: Waiting<A, R>[] = [];
    for (const w of waiting) {
      if (batch.length < maxBatch && !busy.has(keyOf(w.args))) batch.push(w);
      else rest.push(w);
    }
    waiting = rest;
    return batch;
  }

  function pump() {
    while (inFlight < maxInFlight && waiting.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) return;
      const keys = new Set(batch.map((b) => keyOf(b.args)));
      for (const key of keys) busy.add(key);
      inFlight++;
      let freed = false;
      const done = () => {
        if (freed) return;
        freed = true;
        for (const key of keys) busy.delete(key);
        inFlight--;
        pump();
      };
      void send(batch, done)
        .catch((err) => {
          for (const b of batch) b.reject(err); // only requests not answered yet: a settled promise ignores it
        })
        .finally(done);
    }
  }

  /**
   * A request whose deadline passes while it waits is taken out of the queue and never sent: its caller has
   * answered 503 already, and a request never sent is certainly not applied.
   */
  const enqueue = (args: A) =>
    new Promise<R>((resolve, reject) => {
      const signal = currentDeadline()?.signal;
      if (signal?.aborted) return reject(signal.reason);
      const entry: Waiting<A, R> = { args, resolve, reject };
      waiting.push(entry);
      if (!signal) return;
      const onAbort = () => {
        const at = waiting.indexOf(entry);
        if (at < 0) return; // already in a call: that call is bounded by the query timeout
        waiting.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.resolve = (r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      entry.reject = (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      };
    });

  return {
    run(args) {
      const p = enqueue(args);
      pump();
      return p;
    },
    runAll(list) {
      const promises = list.map(enqueue);
      pump();
      return Promise.allSettled(promises);
    },
    get state() {
      return { waiting: waiting.length, inFlight };
    },
  };
}
