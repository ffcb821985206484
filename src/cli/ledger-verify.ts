import { type Config, loadConfig } from '../config.ts';
import { createDatabase, type DatabaseHandle } from '../db/database.ts';
import { type EmbeddedDatabase, useEmbeddedPostgres } from '../db/embedded.ts';
import { findInconsistentAccounts } from '../modules/ledger/index.ts';
import { describeStartError } from '../start-errors.ts';

/**
 * `npm run ledger:verify`: for every account, sum of entries = cached balance = sum of remaining lots, each
 * entry's balanceAfter follows from the one before, held amounts (account and lots) equal what the active
 * holds reserve, and no debit is reversed beyond its amount. Prints the accounts that differ.
 * Exit codes, for a scheduler or an alert: 0 consistent, 1 inconsistent, 2 could not check (one line says why).
 * Safe beside a running service: DATABASE_URL (through a pooler when DATABASE_POOLER says so), else the
 * embedded Postgres the running service owns, reached without touching it.
 */
export const EXIT_CONSISTENT = 0;
export const EXIT_INCONSISTENT = 1;
export const EXIT_COULD_NOT_CHECK = 2;

let config: Config | undefined;
let embedded: EmbeddedDatabase | undefined;
let database: DatabaseHandle | undefined;
let url: string | undefined;
let code = EXIT_COULD_NOT_CHECK;
try {
  config = loadConfig();
  embedded = config.databaseUrl ? undefined : await useEmbeddedPostgres(config.dataDir);
  url = config.databaseUrl ?? (embedded?.url as string);
  database = createDatabase(url, {
    poolSize: 2,
    // One query over the whole ledger: it may run long, and it is not serving a request.
    queryTimeoutMs: 0,
    pooler: config.databasePooler,
  });
  const { rows } = await database.pool.query<{ n: number }>('select count(*)::bigint as n from accounts');
  const bad = await findInconsistentAccounts(database.db);
  for (const row of bad) {
    console.log(
      `MISMATCH ${row.user_id}: cached balance ${row.cached}, sum of entries ${row.entries_sum}, ` +
        `sum of lots ${row.lots_sum}, balanceAfter breaks ${row.chain_breaks}, held ${row.held}, ` +
        `sum of active holds ${row.holds_sum}, lots with a wrong held amount ${row.lots_held_breaks}, ` +
        `debits reversed beyond their amount ${row.over_reversed}`,
    );
  }
  console.log(`${rows[0]?.n ?? 0} accounts checked, ${bad.length} inconsistent`);
  code = bad.length > 0 ? EXIT_INCONSISTENT : EXIT_CONSISTENT;
} catch (err) {
  console.error(`ledger:verify could not check the ledger: ${describeStartError(err, config, url)}`);
  code = EXIT_COULD_NOT_CHECK;
} finally {
  await database?.close().catch(() => {});
  await embedded?.stop().catch(() => {});
}
process.exit(code);
