import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { unauthorized, unavailable } from '../../../errors.ts';
import { errorsWithoutRateLimit, ok } from '../../../http/openapi.ts';
import { safeEqual } from '../../../lib/secrets.ts';
import { storableProviderEvent } from '../../../lib/text.ts';
import { RevenuecatDeliveryResult, RevenuecatWebhookBody } from './revenuecat-event.ts';
import type { App } from '../../../http/types.ts';

/** POST /webhooks/revenuecat: RevenueCat sends the Authorization value configured in its dashboard. */
export default async function revenuecatWebhookRoutes(app: App) {
  const expected = app.config.revenuecat.webhookAuth;

  // onRequest: checked before the body is parsed, so an unauthenticated caller learns nothing about it.
  const authorize = async (request: FastifyRequest) => {
    if (!expected) {
      throw unavailable('revenuecat.not_configured');
    }
    if (!safeEqual(request.headers.authorization ?? '', expected)) {
      throw unauthorized('revenuecat.unauthorized');
    }
  };

  app.post(
    '/revenuecat',
    {
      onRequest: authorize,
      config: { providerPayload: true },
      schema: {
        operationId: 'receiveRevenuecatEvent',
        tags: ['webhooks'],
        summary: 'RevenueCat events',
        description:
          'Receives RevenueCat events. `Authorization` must equal `REVENUECAT_WEBHOOK_AUTH` (unset: 503). ' +
          'Every accepted delivery answers 200: processed, ignored (sandbox, unmapped product, types without ' +
          'a credit effect) or a duplicate event id. NON_RENEWING_PURCHASE, INITIAL_PURCHASE and RENEWAL grant ' +
          "the package's credits once per store transaction; CANCELLATION with cancel_reason CUSTOMER_SUPPORT " +
          'takes them back; REFUND_REVERSED grants back what the refund took.',
        headers: Type.Object({
          authorization: Type.Optional(
            Type.String({
              description: 'The value set in the RevenueCat dashboard (REVENUECAT_WEBHOOK_AUTH)',
            }),
          ),
        }),
        body: RevenuecatWebhookBody,
        response: {
          200: ok(RevenuecatDeliveryResult, 'The delivery was accepted; `outcome` says what it did'),
          ...errorsWithoutRateLimit([401, 'Missing or wrong Authorization'], 413, 415, [
            503,
            'REVENUECAT_WEBHOOK_AUTH is unset, or the database is unavailable (RevenueCat retries)',
          ]),
        },
      },
    },
    async (request, reply) => {
      // Stored as sent where Postgres can store it; NUL and lone surrogates become U+FFFD.
      const result = await app.services.revenuecatWebhook.handle(storableProviderEvent(request.body));
      app.metrics.webhooks.inc({ provider: 'revenuecat', outcome: result.outcome });
      request.log.info(
        { eventId: result.eventId, type: result.type, outcome: result.outcome, note: result.note },
        'revenuecat event',
      );
      return reply.ok(result, 200);
    },
  );
}
