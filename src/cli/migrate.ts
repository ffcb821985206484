import { type Config, loadConfig } from '../config.ts';
import { type EmbeddedDatabase, useEmbeddedPostgres } from '../db/embedded.ts';
import { migrate } from '../db/migrator.ts';
import { describeStartError } from '../start-errors.ts';

/**
 * `npm run db:migrate`: applies pending migrations and exits (over DATABASE_MIGRATION_URL when set; else the
 * embedded Postgres a running service owns, or one started for the run). A failure is one line and exit code 1.
 */
let config: Config | undefined;
let embedded: EmbeddedDatabase | undefined;
let url: string | undefined;
try {
  config = loadConfig();
  embedded = config.databaseUrl ? undefined : await useEmbeddedPostgres(config.dataDir);
  url = config.databaseMigrationUrl ?? config.databaseUrl ?? (embedded?.url as string);
  const applied = await migrate(url);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'nothing to apply');
} catch (err) {
  console.error(`migration failed: ${describeStartError(err, config, url)}`);
  process.exitCode = 1;
} finally {
  await embedded?.stop().catch(() => {});
}
