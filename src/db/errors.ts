import { AppError } from '../errors.ts';
import { msg } from '../messages.ts';

/**
 * The database boundary's error translation: the one place that reads Postgres SQLSTATE codes and pg's own
 * client errors. Everything else throws or receives AppErrors.
 */

const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** pg's client-side failures, which carry no code: a dead socket, a connect timeout, a query timeout. */
const CLIENT_FAILURE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|Client was closed and is not queryable|Connection is closed/i;

/** The message pg gives when DATABASE_QUERY_TIMEOUT_MS passes with no answer. */
export const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/**
 * True when the database cannot be reached or did not answer in time: the connection the query ran on is
 * no longer trustworthy, and the request's outcome may be unknown (a retry with its idempotency key tells).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = codeOf(err);
  if (CONNECTION_ERRNOS.has(code)) return true;
  // 08xxx connection exceptions, 57P01-03 admin shutdown / crash / cannot connect now, 53300 too many
  // connections (PgBouncer's "no more connections allowed" is 08P01).
  if (/^08...$/.test(code) || /^57P0[123]$/.test(code) || code === '53300') return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && CLIENT_FAILURE.test(message);
}

/**
 * True when the server cancelled the statement (statement_timeout, or an operator's pg_cancel_backend): it
 * was rolled back, and running it again at once would most likely wait as long (a lock pile-up).
 */
export const isStatementCancelled = (err: unknown): boolean => codeOf(err) === '57014';

/** Constraints whose violation has a better answer than the generic one: constraint name -> the answer. */
const CONSTRAINT_ERRORS: Record<string, (detail: string) => AppError | undefined> = {
  // Two writers claimed one store product id at the same time.
  package_revenuecat_products_pkey: () => new AppError('conflict', msg('package.product_id_clash')),
  // A grant would take a balance past 2^53-1, the most a client can hold exactly (migration 006).
  accounts_balance_safe: () => new AppError('conflict', msg('ledger.balance_too_large')),
  ledger_entries_balance_after_safe: () => new AppError('conflict', msg('ledger.balance_too_large')),
  // A purchase was being created for a package deleted in the meantime (not: a package still referenced).
  purchases_package_id_fkey: (detail) =>
    /is not present/.test(detail) ? new AppError('not_found', msg('package.not_found')) : undefined,
};

/**
 * The AppError a database error means, or undefined when it means a bug (the caller answers 500).
 * 503 for an unreachable or frozen database and for transient conflicts worth a retry; 409 for a rule the
 * data enforces; 400 for text Postgres cannot store (a safety net: validation should have caught it).
 */
export function fromDatabaseError(err: unknown): AppError | undefined {
  if (isDatabaseUnavailable(err))
    return new AppError('service_unavailable', msg('service.database_unavailable'));
  const code = codeOf(err);
  if (!/^[0-9A-Z]{5}$/.test(code)) return undefined;
  const { constraint, detail } = err as { constraint?: unknown; detail?: unknown };
  const specific = typeof constraint === 'string' ? CONSTRAINT_ERRORS[constraint] : undefined;
  const answer = specific?.(typeof detail === 'string' ? detail : '');
  if (answer) return answer;
  switch (code) {
    // serialization failure, deadlock, lock not available, statement timeout / cancelled
    case '40001':
    case '40P01':
    case '55P03':
    case '57014':
      return new AppError('service_unavailable', msg('service.busy'));
    case '23505':
      return new AppError('conflict', msg('db.unique_violation'));
    case '23503':
      return new AppError('conflict', msg('db.foreign_key_violation'));
    case '23514':
      return new AppError('conflict', msg('db.check_violation'));
    // The ledger's append-only trigger: entries are never changed or removed. Any other 42501 is a missing
    // grant, a deployment fault the operator must see as one (500).
    case '42501':
      return /append-only/.test(String((err as { message?: unknown }).message))
        ? new AppError('conflict', msg('db.append_only'))
        : undefined;
    // Text Postgres cannot hold (NUL, bad encoding) or a value it cannot parse.
    case '22021':
    case '22P05':
    case '22P02':
      return new AppError('validation_failed', msg('db.unstorable_value'));
    default:
      return undefined;
  }
}
