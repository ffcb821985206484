import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyServerOptions } from 'fastify';
import type { Config } from './config.ts';
import { createDatabase, type DatabaseHandle, type Db } from './db/database.ts';
import { AppError } from './errors.ts';
import authPlugin from './plugins/auth.ts';
import envelopePlugin from './plugins/envelope.ts';
import metricsPlugin from './plugins/metrics.ts';
import swaggerPlugin from './plugins/swagger.ts';
import accountRoutes from './routes/accounts/accounts.route.ts';
import apiKeyRoutes from './routes/api-keys/api-keys.route.ts';
import checkoutRoutes from './routes/credits/checkout.route.ts';
import creditRoutes from './routes/credits/credits.route.ts';
import eventRoutes from './routes/events/events.route.ts';
import devPurchaseRoutes from './routes/packages/dev-purchase.route.ts';
import packageRoutes from './routes/packages/packages.route.ts';
import healthRoutes from './routes/operations/health.route.ts';
import revenuecatWebhookRoutes from './routes/webhooks/revenuecat-webhook.route.ts';
import webhookEndpointRoutes from './routes/webhook-endpoints/webhook-endpoints.route.ts';
import stripeWebhookRoutes from './routes/webhooks/stripe-webhook.route.ts';
import { createApiKeysService } from './services/api-keys.service.ts';
import { createCheckoutService } from './services/checkout.service.ts';
import { createEventsService } from './services/events.service.ts';
import { createLedgerService } from './services/ledger.service.ts';
import { createPackagesService } from './services/packages.service.ts';
import { createRevenuecatWebhookService } from './services/revenuecat-webhook.service.ts';
import { createStripeClient } from './services/stripe.client.ts';
import { createStripeWebhookService } from './services/stripe-webhook.service.ts';
import { createDeliveryWorker } from './services/webhook-delivery.ts';
import { createWebhookEndpointsService } from './services/webhook-endpoints.service.ts';
import type { App } from './types.ts';

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

function createServices(database: DatabaseHandle, config: Config, app: App, requestsInFlight: () => number) {
  const { db } = database;
  const ledger = createLedgerService(db, database.prepared, {
    debitCallsInFlight: config.debitCallsInFlight,
    onEntry: (entry) => app.metrics.credits.inc({ type: entry.type, source: entry.source }),
    onDebitCall: (size) => app.metrics.debitBatchSize.observe(size),
    onDebitBatchError: (err, size) =>
      app.log.warn({ err, size }, 'a debit batch failed; its debits are retried one by one'),
  });
  return {
    apiKeys: createApiKeysService(db),
    ledger,
    packages: createPackagesService(db, ledger),
    checkout: createCheckoutService(db, config, createStripeClient(config.stripe)),
    stripeWebhooks: createStripeWebhookService(db, config, ledger),
    revenuecatWebhook: createRevenuecatWebhookService(db, ledger, {
      allowSandbox: config.revenuecat.allowSandbox,
    }),
    events: createEventsService(db),
    webhookEndpoints: createWebhookEndpointsService(db, config),
    /** Delivers events to webhook endpoints; `server.ts` starts it (tests start it when they need it). */
    webhookWorker: createDeliveryWorker(db, {
      ...config.webhooks,
      log: app.log.child({ component: 'webhook-worker' }),
      requestsInFlight,
      onAttempt: (outcome) => app.metrics.webhookAttempts.inc({ outcome }),
    }),
  };
}
export type Services = ReturnType<typeof createServices>;

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    services: Services;
  }
}

export interface BuildOptions {
  /** A database handle to use instead of opening one from `config.databaseUrl` (closed with the app either way). */
  database?: DatabaseHandle;
  logger?: FastifyServerOptions['logger'];
}

/**
 * JSON bodies are typed strictly ("10" is not an integer); query strings, params and headers are coerced.
 * Unknown body fields fail the schemas' `additionalProperties: false`.
 */
function validators() {
  const options = { strict: false, useDefaults: true, removeAdditional: false, allErrors: false } as const;
  const body = addFormats(new Ajv({ ...options, coerceTypes: false }));
  const other = addFormats(new Ajv({ ...options, coerceTypes: 'array' }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? body : other).compile(schema);
}

/** Builds the application from a config. Never listens: `server.ts` does. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  if (!options.database && !config.databaseUrl)
    throw new Error('buildApp needs config.databaseUrl or a database');
  const database = options.database ?? createDatabase(config.databaseUrl as string, config.databasePoolSize);

  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["x-api-key"]',
          'req.headers["stripe-signature"]',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
    },
    bodyLimit: 1024 * 1024,
    // A caller's x-request-id is kept when it is a sane token, so logs can be joined across services.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { strict: false } },
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validators());
  // Only JSON bodies are accepted (415 otherwise); the Stripe webhook registers its own raw parser.
  app.removeContentTypeParser('text/plain');
  app.decorate('config', config);
  app.decorate('db', database.db);
  app.addHook('onClose', async () => database.close());
  // Requests being served now: the webhook worker yields to them under load.
  let requestsInFlight = 0;
  app.addHook('onRequest', async (_request, reply) => {
    requestsInFlight++;
    reply.raw.once('close', () => requestsInFlight--);
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(envelopePlugin);
  await app.register(metricsPlugin, { token: config.metricsToken });
  app.decorate(
    'services',
    createServices(database, config, app, () => requestsInFlight),
  );
  // Before the pool closes: attempts in flight are aborted and recorded.
  app.addHook('preClose', async () => app.services.webhookWorker.stop());
  await app.register(authPlugin, { config, apiKeys: app.services.apiKeys });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...config.corsOrigins], credentials: true });
  }
  await app.register(swaggerPlugin);

  await app.register(healthRoutes);
  await app.register(
    async (api: App) => {
      const { perMinute, apiKeyPerMinute } = config.rateLimit;
      if (perMinute > 0 || apiKeyPerMinute > 0) {
        await api.register(rateLimit, {
          // After authentication, so a limit is per user or per API key, not per forged token.
          hook: 'preHandler',
          timeWindow: 60_000,
          max: (request) => (request.principal?.kind === 'apiKey' ? apiKeyPerMinute : perMinute),
          allowList: (request) =>
            request.principal?.kind === 'apiKey' ? apiKeyPerMinute === 0 : perMinute === 0,
          keyGenerator: (request) => {
            const p = request.principal;
            if (p?.kind === 'apiKey') return `key:${p.keyId}`;
            if (p?.kind === 'user') return `user:${p.userId}`;
            return `ip:${request.ip}`;
          },
          errorResponseBuilder: (_request, context) =>
            new AppError('rate_limited', `Too many requests; retry in ${Math.ceil(context.ttl / 1000)} s`),
        });
      }
      await api.register(apiKeyRoutes);
      await api.register(creditRoutes);
      await api.register(checkoutRoutes);
      await api.register(accountRoutes);
      await api.register(packageRoutes);
      await api.register(webhookEndpointRoutes);
      await api.register(eventRoutes);
      if (config.allowDevPurchases) await api.register(devPurchaseRoutes);
    },
    { prefix: '/api/v1' },
  );
  // Webhooks: outside the /api/v1 rate limiter (providers retry; a 429 would only delay them).
  await app.register(revenuecatWebhookRoutes, { prefix: '/webhooks' });
  await app.register(stripeWebhookRoutes, { prefix: '/webhooks' });

  return app;
}
