import { isDatabaseUnavailable } from './errors.ts';

interface Log {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Why the database failed, in one short line: a code, or the first line of the message. Never a stack. */
export function outageReason(err: unknown): string {
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? (e.message.split('\n')[0] ?? '') : '';
  return [code, message.slice(0, 200)].filter(Boolean).join(' ') || 'unknown';
}

/**
 * A database outage in the log: one line when it starts (with the reason), a summary at most every
 * `summaryEveryMs` while it lasts, and one line when it ends, each with how many failures it answered. Not a
 * stack per request: a 15 s stop under load wrote thousands of them.
 */
export function createOutageLog(log: Log, opts: { summaryEveryMs?: number; now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  const summaryEveryMs = opts.summaryEveryMs ?? 60_000;
  let down = false;
  let since = 0;
  let lastSummary = 0;
  let failures = 0;
  const seconds = () => Math.round((now() - since) / 1000);
  return {
    /** Records a failure that means the database is unavailable (503s, a sweep, a deadline). */
    failed(err: unknown) {
      if (!down) {
        down = true;
        since = now();
        lastSummary = since;
        failures = 1;
        log.error(
          { reason: outageReason(err) },
          'database unavailable: what needs it answers 503 until it is back (one line now, a count when it ends)',
        );
        return;
      }
      failures++;
      if (now() - lastSummary >= summaryEveryMs) {
        lastSummary = now();
        log.warn(
          { failures, downSeconds: seconds(), reason: outageReason(err) },
          'database still unavailable',
        );
      }
    },
    /** The database answered again (a new connection opened): ends an outage, if one was on. */
    recovered() {
      if (!down) return;
      down = false;
      log.info({ failures, downSeconds: seconds() }, 'database available again');
    },
    get down() {
      return down;
    },
    get failures() {
      return failures;
    },
  };
}
export type OutageLog = ReturnType<typeof createOutageLog>;

/** True for an error that belongs to an outage: the database unreachable or frozen, or a request's deadline. */
export function isOutageError(err: unknown): boolean {
  if (isDatabaseUnavailable(err)) return true;
  const messages = (err as { messages?: unknown } | null)?.messages;
  return (
    Array.isArray(messages) &&
    messages.some(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        ['service.database_unavailable', 'service.deadline'].includes((m as { key?: string }).key ?? ''),
    )
  );
}

/**
 * `log` whose warnings about an outage error (`{ err }`) go to the outage log instead: a background job (the
 * webhook worker's passes) then adds to the outage's count rather than writing a stack every second.
 */
export function outageAwareLog<L extends { warn(obj: unknown, msg?: string): void }>(
  log: L,
  outage: OutageLog,
): L {
  const wrapped = Object.create(log) as L;
  wrapped.warn = ((obj: unknown, msg?: string) => {
    const err = (obj as { err?: unknown } | null)?.err;
    if (err !== undefined && isOutageError(err)) return outage.failed(err);
    return log.warn(obj, msg);
  }) as L['warn'];
  return wrapped;
}
