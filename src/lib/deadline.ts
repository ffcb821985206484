import { AsyncLocalStorage } from 'node:async_hooks';
import { AppError } from '../errors.ts';
import { msg } from '../messages.ts';

/**
 * A request's deadline: when it passes, the request answers 503 at once however its work was queued (a pool
 * checkout, the ledger's group commit behind another call on the same account, a connect and then a query),
 * and work still waiting in a queue is dropped, never sent. `signal` aborts with the 503 as its reason.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Epoch ms at which it passes. */
  readonly at: number;
  /** Stops its timer (the request answered). */
  clear(): void;
}

export function createDeadline(ms: number, budgetMs: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new AppError('service_unavailable', msg('service.deadline', { ms: budgetMs }))),
    ms,
  );
  timer.unref();
  return { signal: controller.signal, at: Date.now() + ms, clear: () => clearTimeout(timer) };
}

const storage = new AsyncLocalStorage<Deadline>();

/** The deadline of the request whose work is running now (undefined outside a request). */
export const currentDeadline = (): Deadline | undefined => storage.getStore();

/** Runs `fn` with `deadline` as the current one, for everything it awaits. */
export const runWithDeadline = <T>(deadline: Deadline, fn: () => T): T => storage.run(deadline, fn);

/** `work`, or the deadline's 503 if it passes first (`work` then goes on unobserved; its failure is dropped). */
export function withinDeadline<T>(deadline: Deadline | undefined, work: Promise<T>): Promise<T> {
  if (!deadline) return work;
  if (deadline.signal.aborted) {
    work.catch(() => {});
    return Promise.reject(deadline.signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(deadline.signal.reason);
    };
    deadline.signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        deadline.signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        deadline.signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
