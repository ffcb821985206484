import {
  Kysely,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { isDatabaseUnavailable } from './errors.ts';
// Each module owns its tables' types (src/modules/*/*.tables.ts); this file assembles them into the database.
import type { ApiKeysTable } from '../modules/api-keys/index.ts';
import type { CreditPackagesTable, PackageRevenuecatProductsTable } from '../modules/catalog/index.ts';
import type {
  WebhookDeliveriesTable,
  WebhookEndpointsTable,
  EventsTable,
} from '../modules/events-out/index.ts';
import type {
  AccountsTable,
  CreditLotsTable,
  HoldsTable,
  LedgerEntriesTable,
} from '../modules/ledger/index.ts';
import type { ProviderSyncStateTable, ProviderEventsTable } from '../modules/providers/index.ts';
import type { PurchasesTable } from '../modules/purchases/index.ts';

/** int8 and numeric come back as JS numbers only when exact; anything larger is an error, never a rounding. */
function parseSafeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`integer out of the safe range: ${value}`);
  return n;
}
pg.types.setTypeParser(pg.types.builtins.INT8, parseSafeInteger);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, parseSafeInteger);

export interface Database {
  api_keys: ApiKeysTable;
  credit_packages: CreditPackagesTable;
  package_revenuecat_products: PackageRevenuecatProductsTable;
  purchases: PurchasesTable;
  accounts: AccountsTable;
  ledger_entries: LedgerEntriesTable;
  credit_lots: CreditLotsTable;
  holds: HoldsTable;
  webhook_events: ProviderEventsTable;
  provider_sync_state: ProviderSyncStateTable;
  events: EventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

export type Db = Kysely<Database>;
// Row types, re-exported for the code that reads them from here.
export type {
  EventRow,
  WebhookDeliveryRow,
  WebhookEndpointRow,
  DeliveryStatus,
} from '../modules/events-out/index.ts';
export type { HoldRow, LedgerEntryRow } from '../modules/ledger/index.ts';
export type {
  EventProvider,
  ProviderEventOrigin,
  EventStatus,
  ProviderEventRow,
} from '../modules/providers/index.ts';
export type { PurchaseRow, PurchaseStatus } from '../modules/purchases/index.ts';
export type { HoldStatus, LedgerEntryType, LedgerSource, Provider } from '../http/schemas.ts';

/** Any executor: the pool-backed Kysely, or a transaction the caller owns. */
export type Executor = Kysely<Database> | Transaction<Database>;

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
