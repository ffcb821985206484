import { buildApp } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';

/**
 * `npm run reconcile`: one Stripe reconciliation run now (what the periodic job does every
 * STRIPE_RECONCILE_INTERVAL_MS). Prints events seen, applied and already stored; exits 1 when it failed.
 */
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir);
if (embedded) config = Object.freeze({ ...config, databaseUrl: embedded.url });
const app = await buildApp(config);
let failed = false;
try {
  const result = await app.services.reconciler.run();
  if (result.skipped) {
    console.log(`skipped: ${result.reason}`);
  } else {
    const outcomes = Object.entries(result.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `stripe reconciliation from ${result.from}: seen ${result.seen}, applied ${result.applied}, ` +
        `already stored ${result.alreadyStored}${outcomes ? ` (applied: ${outcomes})` : ''}`,
    );
  }
} catch (err) {
  failed = true;
  console.error(`stripe reconciliation failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await app.close();
  await embedded?.stop();
}
process.exit(failed ? 1 : 0);
