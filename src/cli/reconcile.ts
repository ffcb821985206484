import { buildApp } from '../app.ts';
import { type Config, loadConfig } from '../config.ts';
import { type EmbeddedDatabase, useEmbeddedPostgres } from '../db/embedded.ts';
import type { App } from '../http/types.ts';
import { describeStartError } from '../start-errors.ts';

/**
 * `npm run reconcile`: one Stripe reconciliation run now (what the periodic job does every
 * STRIPE_RECONCILE_INTERVAL_MS). Prints events seen, applied and already stored; exits 1 when it failed,
 * with one line saying why.
 */
let config: Config | undefined;
let embedded: EmbeddedDatabase | undefined;
let app: App | undefined;
let failed = false;
try {
  config = loadConfig();
  embedded = config.databaseUrl ? undefined : await useEmbeddedPostgres(config.dataDir);
  if (embedded) config = Object.freeze({ ...config, databaseUrl: embedded.url });
  app = await buildApp(config);
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
  console.error(`stripe reconciliation failed: ${describeStartError(err, config, config?.databaseUrl)}`);
} finally {
  await app?.close().catch(() => {});
  await embedded?.stop().catch(() => {});
}
process.exit(failed ? 1 : 0);
