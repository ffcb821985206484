import {
  type ColumnType,
  type Generated,
  Kysely,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  type Selectable,
} from 'kysely';
import pg from 'pg';
import type { HoldStatus, LedgerEntryType, LedgerSource, Provider } from '../http/schemas.ts';
import { isDatabaseUnavailable } from './errors.ts';

/** int8 and numeric come back as JS numbers only when exact; anything larger is an error, never a rounding. */
function parseSafeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`integer out of the safe range: ${value}`);
  return n;
}
pg.types.setTypeParser(pg.types.builtins.INT8, parseSafeInteger);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, parseSafeInteger);

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface ApiKeysTable {
  id: string;
  name: string;
  prefix: string;
  key_hash: string;
  scopes: string[];
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface CreditPackagesTable {
  id: string;
  name: string;
  description: string | null;
  credits: number;
  price: number;
  currency: string;
  is_active: Generated<boolean>;
  stripe_price_id: string | null;
  credit_expiry_days: number | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface PackageRevenuecatProductsTable {
  product_id: string;
  package_id: string;
}

export type PurchaseStatus =
  | 'pending'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'refunded'
  | 'partially_refunded'
  | 'disputed';
export type { HoldStatus, LedgerEntryType, LedgerSource, Provider } from '../http/schemas.ts';

export interface PurchasesTable {
  id: string;
  user_id: string;
  package_id: string;
  provider: Provider;
  provider_ref: string | null;
  status: PurchaseStatus;
  credits: number;
  price: number;
  currency: string;
  credit_expiry_days: number | null;
  credits_reversed: Generated<number>;
  credits_disputed: Generated<number>;
  stripe_payment_intent_id: string | null;
  created_at: Generated<Date>;
  completed_at: Date | null;
  updated_at: Generated<Date>;
}

export interface AccountsTable {
  user_id: string;
  balance: Generated<number>;
  /** What active holds reserve; available = balance - held (SQL: credits_available). */
  held: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface LedgerEntriesTable {
  user_id: string;
  id: Generated<number>;
  type: LedgerEntryType;
  amount: number;
  balance_after: number;
  source: LedgerSource;
  purchase_id: string | null;
  reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  metadata: ColumnType<Record<string, unknown>, string | undefined, never>;
  created_at: Generated<Date>;
  /** The hold a capture's debit came from. */
  hold_id: string | null;
  /** The debit a debit_reversal gives back. */
  reverses_entry_id: number | null;
}

export interface HoldsTable {
  user_id: string;
  id: string;
  seq: Generated<number>;
  amount: number;
  captured_amount: Generated<number>;
  status: HoldStatus;
  reason: string | null;
  metadata: ColumnType<Record<string, unknown>, string | undefined, never>;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Generated<Date>;
  expires_at: Date;
  captured_at: Date | null;
  released_at: Date | null;
  entry_id: number | null;
}

export interface CreditLotsTable {
  user_id: string;
  id: Generated<number>;
  purchase_id: string | null;
  source: string;
  amount: number;
  remaining: number;
  /** Reserved by active holds: spendable = remaining - held. */
  held: Generated<number>;
  /** Generated: remaining = 0. */
  empty: Generated<boolean>;
  expires_at: Date | null;
  grant_entry_id: number;
  created_at: Generated<Date>;
}

export type EventProvider = 'stripe' | 'revenuecat';
export type EventStatus = 'processed' | 'ignored' | 'parked' | 'failed';
export type EventSource = 'webhook' | 'reconcile' | 'sync';

/** The provider-event inbox (010_provider_event_inbox.sql). */
export interface WebhookEventsTable {
  provider: EventProvider;
  event_id: string;
  type: string;
  payload: ColumnType<unknown, string, never>;
  status: EventStatus;
  note: string | null;
  purchase_id: string | null;
  received_at: Generated<Date>;
  processed_at: Timestamp | null;
  seq: Generated<number>;
  source: Generated<EventSource>;
  user_id: string | null;
  waiting_for: string | null;
  attempts: Generated<number>;
}

export interface ProviderSyncStateTable {
  name: string;
  high_water: Date | null;
  lease_owner: string | null;
  lease_until: Date | null;
  last_run_at: Date | null;
  last_result: ColumnType<unknown, string | null, string | null> | null;
}

/**
 * The event log: the view `events` (migrations/020_events_from_ledger.sql) of the event rows written by triggers
 * and the credit events read from the ledger. Read by the API and the delivery worker; never written.
 */
export interface EventsTable {
  id: Generated<number>;
  type: string;
  user_id: string | null;
  endpoint_id: string | null;
  data: ColumnType<Record<string, unknown>, never, never>;
  created_at: Generated<Date>;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  low_balance_thresholds: ColumnType<number[], number[] | undefined, number[]>;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Timestamp | null;
  disabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint_id: string;
  event_id: number;
  status: Generated<DeliveryStatus>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  lease_until: Timestamp | null;
  last_attempt_at: Timestamp | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Timestamp | null;
  created_at: Generated<Date>;
}

export interface Database {
  api_keys: ApiKeysTable;
  credit_packages: CreditPackagesTable;
  package_revenuecat_products: PackageRevenuecatProductsTable;
  purchases: PurchasesTable;
  accounts: AccountsTable;
  ledger_entries: LedgerEntriesTable;
  credit_lots: CreditLotsTable;
  holds: HoldsTable;
  webhook_events: WebhookEventsTable;
  provider_sync_state: ProviderSyncStateTable;
  events: EventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

export type Db = Kysely<Database>;
export type LedgerEntryRow = Selectable<LedgerEntriesTable>;
export type HoldRow = Selectable<HoldsTable>;
export type PurchaseRow = Selectable<PurchasesTable>;
export type ProviderEventRow = Selectable<WebhookEventsTable>;
export type EventRow = Selectable<EventsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;

/**
 * A query run as a named prepared statement: parsed and planned once per connection, not per call. Kysely
 * sends unnamed statements, which Postgres plans on every call; on the hot paths (debit, balance read) that
 * planning cost about 40% of Postgres' time per call (pgbench -M extended vs -M prepared on credits_debit).
 */
/** The server-side limit for a client-side query timeout (0: none; then 15 s). */
export const statementTimeoutFor = (queryTimeoutMs: number) =>
  queryTimeoutMs > 0 ? Math.floor(queryTimeoutMs * 0.9) : 15_000;

export type PreparedQuery = <R>(name: string, text: string, values: unknown[]) => Promise<R[]>;

export interface DatabaseHandle {
  db: Db;
  pool: pg.Pool;
  prepared: PreparedQuery;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  poolSize?: number;
  /**
   * A query with no answer by then fails on the client side, even when the server is frozen (no FIN, no
   * RST). Default 10 s; 0: none (command-line tools whose one query may legitimately run long).
   */
  queryTimeoutMs?: number;
  /** `transaction`: the URL goes through a pooler in transaction mode (no startup options, no named statements). */
  pooler?: 'none' | 'transaction';
}

/**
 * The pool as Kysely sees it. A client whose query failed with a dead or frozen connection goes back with
 * the error, so the pool destroys it instead of lending it again: after a query timeout pg keeps the query
 * it sent as active, and every later query on that client would wait behind it. A client already known
 * broken fails further queries at once (a transaction's rollback would otherwise wait a timeout more).
 */
function kyselyPool(pool: pg.Pool): PostgresPool {
  const wrappers = new WeakMap<pg.PoolClient, { client: PostgresPoolClient; broken: Error | undefined }>();
  return {
    async connect() {
      const raw = await pool.connect();
      let entry = wrappers.get(raw);
      if (!entry) {
        const state: { client: PostgresPoolClient; broken: Error | undefined } = {
          broken: undefined,
          client: {
            query: ((text: string, values: unknown[]) => {
              // A cursor (Kysely's streaming) is submitted as it is.
              if (typeof text !== 'string') return raw.query(text as never);
              if (state.broken) return Promise.reject(state.broken);
              return raw.query(text, values).catch((err: unknown) => {
                if (isDatabaseUnavailable(err)) state.broken = err as Error;
                throw err;
              });
            }) as PostgresPoolClient['query'],
            release: () => raw.release(state.broken),
          },
        };
        entry = state;
        wrappers.set(raw, entry);
      }
      return entry.client;
    },
    end: () => pool.end(),
  };
}

/** One pool for the process; Kysely on top of it. Connections are opened lazily. */
export function createDatabase(
  url: string,
  poolSizeOrOptions: number | DatabaseOptions = {},
): DatabaseHandle {
  const options = typeof poolSizeOrOptions === 'number' ? { poolSize: poolSizeOrOptions } : poolSizeOrOptions;
  const queryTimeout = options.queryTimeoutMs ?? 10_000;
  const pooled = options.pooler === 'transaction';
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 20,
    // A frozen server accepts TCP connections and never answers the startup: bounded like a query.
    connectionTimeoutMillis: queryTimeout > 0 ? Math.min(5_000, queryTimeout) : 5_000,
    idleTimeoutMillis: 30_000,
    ...(queryTimeout > 0 ? { query_timeout: queryTimeout } : {}),
    // A statement that runs this long is a bug or a lock pile-up; fail it rather than hold a connection. The
    // server gives up a tenth before the client would: a statement it cancels is rolled back (a definite 503,
    // and the connection stays usable), while one the client abandons may still commit afterwards. A pooler
    // in transaction mode refuses it as a startup parameter ("unsupported startup parameter"): there, set it
    // on the database role (docs/operations.md); the client-side query timeout holds either way.
    ...(pooled ? {} : { statement_timeout: statementTimeoutFor(queryTimeout) }),
    application_name: 'credits-service',
  });
  // A client losing its connection (database restart, failover) must not crash the process. The pool
  // reports idle clients here; a checked-out client emits on itself, and the query it runs fails anyway.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: kyselyPool(pool) }) });
  let closed = false;
  // Behind a pooler in transaction mode, consecutive statements of one client may reach different server
  // connections: a named statement prepared on one is missing on the next (26000) or already there (42P05).
  const prepared: PreparedQuery = pooled
    ? async <R>(_name: string, text: string, values: unknown[]) =>
        (await pool.query({ text, values })).rows as R[]
    : async <R>(name: string, text: string, values: unknown[]) =>
        (await pool.query({ name, text, values })).rows as R[];
  return {
    db,
    pool,
    prepared,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
