import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { unauthorized } from '../errors.ts';
import { safeEqual } from '../lib/secrets.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      registry: Registry;
      /** Credits moved, by entry type and source: what operators alert on. */
      credits: Counter<'type' | 'source'>;
      webhooks: Counter<'provider' | 'outcome'>;
      /** Attempts to deliver events to webhook endpoints, by outcome (delivered, retry, failed). */
      webhookAttempts: Counter<'outcome'>;
      /** Debits per call to Postgres: above 1 when debits wait for a free slot and share a commit. */
      debitBatchSize: Histogram;
      /** Stripe reconciliation: events seen, applied (missed by the webhook) and already stored. */
      reconcileEvents: Counter<'result'>;
      /** Stripe reconciliation runs: completed, skipped (another replica holds the lease), failed. */
      reconcileRuns: Counter<'outcome'>;
    };
  }
}

async function metrics(app: FastifyInstance, opts: { token: string | undefined }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const credits = new Counter({
    name: 'credits_ledger_entries_total',
    help: 'Ledger entries written, by type and source',
    labelNames: ['type', 'source'],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: 'credits_webhook_events_total',
    help: 'Webhook deliveries by provider and outcome',
    labelNames: ['provider', 'outcome'],
    registers: [registry],
  });
  const webhookAttempts = new Counter({
    name: 'credits_webhook_attempts_total',
    help: 'Attempts to deliver events to webhook endpoints, by outcome (delivered, retry, failed)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const debitBatchSize = new Histogram({
    name: 'credits_debit_batch_size',
    help: 'Debits sent to Postgres in one call (one transaction, one commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const reconcileEvents = new Counter({
    name: 'credits_stripe_reconcile_events_total',
    help: "Events read from Stripe's event list by reconciliation, by result: seen, applied, already_stored",
    labelNames: ['result'],
    registers: [registry],
  });
  const reconcileRuns = new Counter({
    name: 'credits_stripe_reconcile_runs_total',
    help: 'Stripe reconciliation runs by outcome: completed, skipped (another replica), failed',
    labelNames: ['outcome'],
    registers: [registry],
  });
  app.decorate('metrics', {
    registry,
    credits,
    webhooks,
    webhookAttempts,
    debitBatchSize,
    reconcileEvents,
    reconcileRuns,
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (opts.token) {
      const header = request.headers.authorization ?? '';
      if (!safeEqual(header, `Bearer ${opts.token}`)) throw unauthorized('auth.metrics_token');
    }
    reply.type(registry.contentType);
    return registry.metrics();
  });
}

export default fp(metrics, { name: 'metrics', dependencies: ['envelope'] });
