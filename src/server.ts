import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrator.ts';

async function main() {
  let config = loadConfig();
  let embedded: EmbeddedDatabase | undefined;
  if (!config.databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir);
    config = Object.freeze({ ...config, databaseUrl: embedded.url });
  }
  const applied = await migrate(config.databaseUrl as string);

  const app = await buildApp(config);
  if (applied.length > 0) app.log.info({ applied }, 'migrations applied');
  const sweeper =
    config.expirySweepIntervalMs > 0
      ? setInterval(() => {
          app.services.ledger.sweepExpired().catch((err) => app.log.warn({ err }, 'expiry sweep failed'));
        }, config.expirySweepIntervalMs)
      : undefined;
  sweeper?.unref();
  // Every replica runs a delivery worker (WEBHOOK_POLL_INTERVAL_MS=0: none in this process).
  app.services.webhookWorker.start();

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the pool, stop an embedded Postgres.
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    if (sweeper) clearInterval(sweeper);
    await app.close();
    if (embedded) await embedded.stop();
  });

  await app.listen({ port: config.port, host: config.host });
  const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
  if (embedded) {
    app.log.info(
      `embedded Postgres at ${embedded.url.replace(/:[^:@/]+@/, ':***@')} (data in ${config.dataDir})`,
    );
  }
  app.log.info(`API docs: ${base}/docs`);
  if (config.nodeEnv !== 'production') {
    app.log.info('development token: npm run token -- --sub user_1 --roles admin');
  }
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
  } else {
    console.error('failed to start:', err);
  }
  process.exit(1);
});
