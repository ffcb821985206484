import { type Config, loadConfig } from '../config.ts';
import { createDatabase, type DatabaseHandle } from '../db/database.ts';
import { type EmbeddedDatabase, useEmbeddedPostgres } from '../db/embedded.ts';
import { findInconsistentAccounts } from '../modules/ledger/index.ts';
import { describeStartError } from '../start-errors.ts';
import { costCheckSql } from '../modules/reports/index.ts';

/**
 * `npm run ledger:verify`: for every account, sum of entries = cached balance = sum of remaining lots, each
 * entry's balanceAfter follows from the one before, held amounts (account and lots) equal what the active
 * holds reserve, and no debit is reversed beyond its amount. Per currency, the cost of the credits left in the
 * lots (their deferred cost) equals sold - recognized - breakage - clawed back as the credits report counts it
 * from the dated movements, and the credits the movements leave equal the lots' `remaining`. Prints what differs.
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
  const costs = (await costCheckSql.execute(database.db)).rows;
  const badCosts = costs.filter(
    (c) => c.by_movements !== c.by_lots || c.credits_by_movements !== c.credits_by_lots,
  );
  for (const c of badCosts) {
    console.log(
      `COST MISMATCH ${c.currency ?? '(no price)'}: sold - recognized - breakage - clawed back ${c.by_movements}, ` +
        `deferred cost of the lots ${c.by_lots}; credits left by the movements ${c.credits_by_movements}, ` +
        `in the lots ${c.credits_by_lots}`,
    );
  }
  console.log(`${costs.length} currencies checked at cost, ${badCosts.length} inconsistent`);
  code = bad.length > 0 || badCosts.length > 0 ? EXIT_INCONSISTENT : EXIT_CONSISTENT;
} catch (err) {
  console.error(`ledger:verify could not check the ledger: ${describeStartError(err, config, url)}`);
  code = EXIT_COULD_NOT_CHECK;
} finally {
  await database?.close().catch(() => {});
  await embedded?.stop().catch(() => {});
}
process.exit(code);
