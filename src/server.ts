import closeWithGrace from 'close-with-grace';
import { CompiledQuery } from 'kysely';
import { buildApp } from './app.ts';
import { type Config, loadConfig } from './config.ts';
import { type EmbeddedDatabase, embeddedStatePath, startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrator.ts';
import { isOutageError } from './db/outage.ts';
import { describeStartError, hidePassword, startWarnings } from './start-errors.ts';
import { closeGracefully } from './http/shutdown.ts';
import type { App } from './http/types.ts';

async function main() {
  let config: Config | undefined;
  let embedded: EmbeddedDatabase | undefined;
  let app: App | undefined;
  let databaseUrl: string | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let holdSweeper: NodeJS.Timeout | undefined;
  let reconciler: NodeJS.Timeout | undefined;
  let stopping = false;
  const stop = async () => {
    stopping = true;
    if (sweeper) clearInterval(sweeper);
    if (holdSweeper) clearInterval(holdSweeper);
    if (reconciler) clearInterval(reconciler);
    // Before the pool closes: attempts in flight end or are aborted, and are recorded (retried later).
    await app?.services.webhookWorker.stop();
    if (app) await closeGracefully(app);
    if (embedded) await embedded.stop();
  };

  try {
    config = loadConfig();
    // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the pool, stop an embedded Postgres.
    // Installed first, so a signal during a slow start (an embedded Postgres, migrations) also cleans up.
    closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
      if (err) app?.log.error({ err }, 'shutting down after an error');
      else if (app) app.log.info({ signal }, 'shutting down');
      await stop();
    });
    if (!config.databaseUrl) {
      embedded = await startEmbeddedPostgres(config.dataDir);
      config = Object.freeze({ ...config, databaseUrl: embedded.url });
    }
    databaseUrl = config.databaseMigrationUrl ?? (config.databaseUrl as string);
    const applied = await migrate(databaseUrl);
    databaseUrl = config.databaseUrl as string;

    app = await buildApp(config);
    // The service's own pool answers, or the start fails saying why (a pooler refusing its settings, say).
    await app.db.executeQuery(CompiledQuery.raw('select 1'));
    if (applied.length > 0) app.log.info({ applied }, 'migrations applied');
    const ledger = app.services.ledger;
    const log = app.log;
    const outage = app.databaseOutage;
    // A database outage is logged once with a count (src/db/outage.ts), not once per sweep.
    const sweepFailed = (err: unknown, what: string) =>
      isOutageError(err) ? outage.failed(err) : log.warn({ err }, what);
    sweeper =
      config.expirySweepIntervalMs > 0
        ? setInterval(() => {
            ledger.sweepExpired().catch((err) => sweepFailed(err, 'expiry sweep failed'));
          }, config.expirySweepIntervalMs)
        : undefined;
    sweeper?.unref();
    // Holds past expiresAt are never capturable either way; the sweep frees their credits for reads and lists.
    holdSweeper =
      config.holdSweepIntervalMs > 0
        ? setInterval(() => {
            ledger.sweepExpiredHolds().catch((err) => sweepFailed(err, 'hold sweep failed'));
          }, config.holdSweepIntervalMs)
        : undefined;
    holdSweeper?.unref();
    // Every replica schedules it; the lease lets one run at a time, the others skip.
    const reconcile = app.services.reconciler;
    reconciler =
      config.stripe.reconcileIntervalMs > 0 && config.stripe.secretKey
        ? setInterval(() => {
            reconcile.run().catch((err) => log.warn({ err }, 'stripe reconciliation failed'));
          }, config.stripe.reconcileIntervalMs)
        : undefined;
    reconciler?.unref();
    // Every replica runs a delivery worker (WEBHOOK_POLL_INTERVAL_MS=0: none in this process).
    app.services.webhookWorker.start();

    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    if (stopping) return;
    // A failed start stops what it started: an embedded Postgres left running keeps DATA_DIR locked.
    await stop().catch(() => {});
    console.error(`failed to start: ${describeStartError(err, config, databaseUrl)}`);
    process.exit(1);
  }

  const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
  if (embedded) {
    app.log.info(
      `embedded Postgres at ${hidePassword(embedded.url)} (data in ${config.dataDir}; port and credentials ` +
        `for local tools in ${embeddedStatePath(config.dataDir)}; npm run ledger:verify, db:migrate and reconcile use it)`,
    );
  } else if (config.databasePooler === 'transaction') {
    app.log.info('DATABASE_URL goes through a pooler in transaction mode: no named prepared statements');
  }
  app.log.info(
    config.docsEnabled
      ? `API docs: ${base}/docs (OpenAPI: ${base}/docs/json)`
      : 'API docs: off (DOCS_ENABLED=false); the OpenAPI document is openapi.yaml in the repository',
  );
  for (const warning of startWarnings(config)) app.log.warn(warning);
  app.log.info(
    config.allowDevPurchases
      ? 'dev purchase route: ON (ALLOW_DEV_PURCHASES=true): POST /api/v1/credit-packages/purchase grants credits without payment'
      : 'dev purchase route: off (ALLOW_DEV_PURCHASES=true enables it outside production)',
  );
  if (config.nodeEnv !== 'production') {
    app.log.info('development token: npm run token -- --sub user_1 --roles admin');
  }
}

await main();
