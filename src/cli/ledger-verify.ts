import { loadConfig } from '../config.ts';
import { createDatabase } from '../db/database.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { findInconsistentAccounts } from '../modules/ledger/index.ts';

/**
 * `npm run ledger:verify`: for every account, sum of entries = cached balance = sum of remaining lots, each
 * entry's balanceAfter follows from the one before, held amounts (account and lots) equal what the active
 * holds reserve, and no debit is reversed beyond its amount. Prints the accounts that differ; exit 1 if any.
 */
const config = loadConfig();
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir);
const database = createDatabase(config.databaseUrl ?? (embedded?.url as string), {
  poolSize: 2,
  // One query over the whole ledger: it may run long, and it is not serving a request.
  queryTimeoutMs: 0,
});
let failed = false;
try {
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
  failed = bad.length > 0;
} finally {
  await database.close();
  await embedded?.stop();
}
process.exit(failed ? 1 : 0);
