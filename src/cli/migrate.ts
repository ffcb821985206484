import { loadConfig } from '../config.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { migrate } from '../db/migrator.ts';

/** `npm run db:migrate`: applies pending migrations and exits (embedded Postgres when DATABASE_URL is unset). */
const config = loadConfig();
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir);
try {
  const applied = await migrate(
    config.databaseMigrationUrl ?? config.databaseUrl ?? (embedded?.url as string),
  );
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'nothing to apply');
} finally {
  await embedded?.stop();
}
