import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyServerOptions } from 'fastify';
import type { Config } from './config.ts';
import { createDatabase, type DatabaseHandle, type Db } from './db/database.ts';
import { outageAwareLog } from './db/outage.ts';
import { AppError } from './errors.ts';
import { languageOf, msg } from './messages.ts';
import authPlugin from './http/auth.ts';
import envelopePlugin, {
  AJV_OPTIONS,
  clientErrorHandler,
  frameworkErrors,
  MAX_PARAM_LENGTH,
} from './http/envelope.ts';
import deadlinePlugin from './http/deadline.ts';
import inputGuardPlugin from './http/input-guard.ts';
import { REDACTED_PATHS, serializeRequest } from './http/logging.ts';
import metricsPlugin from './http/metrics.ts';
import swaggerPlugin from './http/swagger.ts';
import { createReportsService, reportRoutes } from './modules/reports/index.ts';
import {
  accountRoutes,
  batchDebitRoutes,
  createLedgerService,
  creditRoutes,
  holdRoutes,
} from './modules/ledger/index.ts';
import { apiKeyRoutes, createApiKeysService } from './modules/api-keys/index.ts';
import {
  checkoutRoutes,
  createCheckoutService,
  createProviderInbox,
  createRevenuecatHandler,
  createRevenuecatSync,
  createRevenuecatWebhookService,
  createStripeClient,
  createStripeHandler,
  createStripeReconciler,
  createStripeWebhookService,
  productKey,
  providerEventRoutes,
  revenuecatSyncRoutes,
  revenuecatWebhookRoutes,
  stripeWebhookRoutes,
} from './modules/providers/index.ts';
import {
  createDeliveryWorker,
  createEventsService,
  createWebhookEndpointsService,
  eventRoutes,
  webhookEndpointRoutes,
} from './modules/events-out/index.ts';
import {
  createPurchaseLifecycle,
  createPurchasesService,
  devPurchaseRoutes,
  purchaseRoutes,
  purchasesById,
} from './modules/purchases/index.ts';
import { createPackagesService, packageRoutes } from './modules/catalog/index.ts';
import healthRoutes from './http/health.route.ts';
import consolePlugin from './http/console.ts';
import type { App } from './http/types.ts';

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

function createServices(
  database: DatabaseHandle,
  config: Config,
  app: App,
  requestsInFlight: () => number,
  readDatabase: DatabaseHandle = database,
) {
  const { db } = database;
  const ledger = createLedgerService(db, database.prepared, {
    debitCallsInFlight: config.debitCallsInFlight,
    purchasesById: (ids) => purchasesById(db, ids),
    onEntry: (entry) => app.metrics.credits.inc({ type: entry.type, source: entry.source }),
    onDebitCall: (size) => app.metrics.debitBatchSize.observe(size),
    onDebitBatchError: (err, size) =>
      app.log.warn({ err, size }, 'a debit batch failed; its debits are retried one by one'),
  });
  const lifecycle = createPurchaseLifecycle(ledger);
  const stripe = createStripeClient(config.stripe);
  const stripeHandler = createStripeHandler(lifecycle);
  const revenuecatHandler = createRevenuecatHandler(lifecycle, {
    allowSandbox: config.revenuecat.allowSandbox,
  });
  const inbox = createProviderInbox(
    db,
    { stripe: stripeHandler, revenuecat: revenuecatHandler },
    { onFailed: (e) => app.log.warn(e, 'a provider event failed; an operator can replay it') },
  );
  return {
    apiKeys: createApiKeysService(db),
    ledger,
    lifecycle,
    inbox,
    purchases: createPurchasesService(db, lifecycle),
    packages: createPackagesService(db, {
      // Automatic: saving a mapping grants the purchases of those products that were parked as unmapped.
      onProductsMapped: async (trx, productIds) => {
        await inbox
          .within(trx, 'revenuecat')
          .wake(productIds.map(productKey), 'after its product was mapped');
      },
    }),
    checkout: createCheckoutService(db, config, stripe, {
      lifecycle,
      inbox,
      stripeHandler,
      onSessionReadError: (err, sessionId) =>
        app.log.warn({ err, sessionId }, 'the Checkout Session could not be read from Stripe'),
    }),
    stripeWebhooks: createStripeWebhookService(config, inbox),
    reconciler: createStripeReconciler(db, stripe, inbox, {
      onRun: (outcome) => app.metrics.reconcileRuns.inc({ outcome }),
      onReport: (r) => {
        app.metrics.reconcileEvents.inc({ result: 'seen' }, r.seen);
        app.metrics.reconcileEvents.inc({ result: 'applied' }, r.applied);
        app.metrics.reconcileEvents.inc({ result: 'already_stored' }, r.alreadyStored);
        app.log.info(
          {
            seen: r.seen,
            applied: r.applied,
            alreadyStored: r.alreadyStored,
            outcomes: r.outcomes,
            from: r.from,
          },
          'stripe reconciliation',
        );
      },
    }),
    revenuecatWebhook: createRevenuecatWebhookService(inbox),
    revenuecatSync: createRevenuecatSync(db, config.revenuecat, inbox),
    events: createEventsService(db, config.webhooks.retentionDays),
    reports: createReportsService(db, readDatabase),
    webhookEndpoints: createWebhookEndpointsService(db, config),
    /** Delivers events to webhook endpoints; `server.ts` starts it (tests start it when they need it). */
    webhookWorker: createDeliveryWorker(db, {
      ...config.webhooks,
      // Its passes failing in a database outage count in the outage's log lines (src/db/outage.ts).
      log: outageAwareLog(app.log.child({ component: 'webhook-worker' }), app.databaseOutage),
      requestsInFlight,
      spendingBacklog: ledger.spendingBacklog,
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
  /** Where the service's own logger writes (tests read it); default stdout. */
  logStream?: { write(line: string): void };
}

/**
 * JSON bodies are typed strictly ("10" is not an integer); query strings, params and headers are coerced.
 * Unknown body fields fail the schemas' `additionalProperties: false`; every problem is reported at once.
 */
function validators() {
  const options = AJV_OPTIONS;
  const body = addFormats(new Ajv({ ...options, coerceTypes: false }));
  const other = addFormats(new Ajv({ ...options, coerceTypes: 'array' }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? body : other).compile(schema);
}

/**
 * Fastify's `trustProxy` from TRUST_PROXY. A hop count is a function: Fastify itself now refuses a bare number
 * (it trusts nothing then), since hops alone cannot tell a proxy from a client that sends its own
 * X-Forwarded-For. It means what it meant in Express: the nearest `n` addresses are proxies; safe only when
 * nothing reaches the service except through them (docs/operations.md).
 */
function trustProxyOption(
  trust: Config['trustProxy'],
): boolean | string[] | ((a: string, i: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return Array.isArray(trust) ? [...trust] : (trust as boolean);
}

/**
 * Builds the application from a config. Never listens: `server.ts` does.
 * (About 130 lines: the plugins and routes in the order Fastify must register them; that order is the point.)
 */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  if (!options.database && !config.databaseUrl)
    throw new Error('buildApp needs config.databaseUrl or a database');
  const database =
    options.database ??
    createDatabase(config.databaseUrl as string, {
      poolSize: config.databasePoolSize,
      queryTimeoutMs: config.databaseQueryTimeoutMs,
      pooler: config.databasePooler,
    });

  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Query-string credentials (?api_key=, ?access_token=) are redacted from the URL of every line.
      serializers: { req: serializeRequest as never },
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    bodyLimit: 1024 * 1024,
    // TRUST_PROXY: request.ip (rate limits, auth-failure counts, logs) is then the forwarded client address.
    trustProxy: trustProxyOption(config.trustProxy),
    // A request reaching a closing server (a kept-alive connection) gets the envelope: see the envelope plugin.
    return503OnClosing: false,
    // A caller's x-request-id is kept when it is a sane token, so logs can be joined across services.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { strict: false } },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // Slow clients: headers and body must arrive within REQUEST_TIMEOUT_MS (408 in the envelope); Node checks
    // every `connectionsCheckingInterval`, so that is kept well under the timeout. An idle keep-alive socket
    // is closed after keepAliveTimeout (above a load balancer's usual 60 s idle timeout).
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: 65_000,
    http: {
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(config.requestTimeoutMs / 4))),
    },
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(config.requestTimeoutMs),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validators());
  // Only JSON bodies are accepted (415 otherwise); the Stripe webhook registers its own raw parser.
  app.removeContentTypeParser('text/plain');
  app.decorate('config', config);
  app.decorate('db', database.db);
  app.addHook('onClose', async () => database.close());
  // Reports and exports read from DATABASE_READ_URL (a streaming replica) when set, else from a small pool of
  // their own on the primary, so a long export never holds a connection the API needs.
  const readUrl = config.databaseReadUrl ?? (options.database ? undefined : config.databaseUrl);
  const readDatabase = readUrl
    ? createDatabase(readUrl, {
        poolSize: config.databaseReadPoolSize,
        // No pool-wide client timeout: each report sets its own, and an export runs as long as it streams.
        queryTimeoutMs: 0,
        pooler: config.databasePooler,
      })
    : database;
  if (readDatabase !== database) app.addHook('onClose', async () => readDatabase.close());
  // Requests being served now: the webhook worker yields to them under load.
  let requestsInFlight = 0;
  app.addHook('onRequest', async (_request, reply) => {
    requestsInFlight++;
    reply.raw.once('close', () => requestsInFlight--);
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // The language of the error messages (src/messages.ts), said on every answer so caches and clients can tell.
    reply.header('content-language', languageOf(request.headers['accept-language']));
  });

  await app.register(envelopePlugin);
  // A new connection is the database answering again: ends an outage in the log.
  database.pool.on('connect', () => app.databaseOutage.recovered());
  // Before any route: every handler is wrapped in its request's deadline.
  await app.register(deadlinePlugin, { queryTimeoutMs: config.databaseQueryTimeoutMs });
  await app.register(inputGuardPlugin);
  await app.register(metricsPlugin, { token: config.metricsToken });
  app.decorate(
    'services',
    createServices(database, config, app, () => requestsInFlight, readDatabase),
  );
  // Before the pool closes: attempts in flight are aborted and recorded.
  app.addHook('preClose', async () => app.services.webhookWorker.stop());
  await app.register(authPlugin, { config, apiKeys: app.services.apiKeys });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...config.corsOrigins], credentials: true });
  }
  await app.register(swaggerPlugin, { ui: config.docsEnabled });

  await app.register(healthRoutes);
  // The operations console (section 14): static files and their security headers, in its own context.
  await app.register(consolePlugin);
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
            new AppError(
              'rate_limited',
              msg('request.rate_limited', { seconds: Math.ceil(context.ttl / 1000) }),
            ),
        });
      }
      await api.register(apiKeyRoutes);
      await api.register(creditRoutes);
      await api.register(checkoutRoutes);
      await api.register(accountRoutes);
      await api.register(revenuecatSyncRoutes);
      await api.register(holdRoutes);
      await api.register(batchDebitRoutes);
      await api.register(packageRoutes);
      await api.register(purchaseRoutes);
      await api.register(providerEventRoutes);
      await api.register(webhookEndpointRoutes);
      await api.register(eventRoutes);
      await api.register(reportRoutes);
      if (config.allowDevPurchases) await api.register(devPurchaseRoutes);
    },
    { prefix: '/api/v1' },
  );
  // Webhooks: outside the /api/v1 rate limiter (providers retry; a 429 would only delay them).
  await app.register(revenuecatWebhookRoutes, { prefix: '/webhooks' });
  await app.register(stripeWebhookRoutes, { prefix: '/webhooks' });

  return app;
}
