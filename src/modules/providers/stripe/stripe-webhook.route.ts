import { Type } from '@sinclair/typebox';
import { errorsWithoutRateLimit, ok } from '../../../http/openapi.ts';
import type { App } from '../../../http/types.ts';
import { deliveryOutcomeSchema } from '../inbox/provider-event-status.ts';

export const StripeWebhookResultSchema = Type.Object({
  received: Type.Literal(true),
  eventId: Type.String(),
  type: Type.String(),
  outcome: deliveryOutcomeSchema(
    'processed: applied; ignored: stored, nothing to do (unknown type, no matching purchase); ' +
      'parked: stored until the purchase is granted; failed: stored, its handling failed (an operator can ' +
      'replay it); duplicate: this event id was received before',
  ),
  duplicate: Type.Boolean(),
  purchaseId: Type.Union([Type.String(), Type.Null()]),
  note: Type.Union([Type.String(), Type.Null()]),
});

/**
 * POST /webhooks/stripe. Registered outside /api/v1 (no rate limit: Stripe retries what we refuse).
 * This plugin is encapsulated, so the raw-body parser below applies to this route only.
 */
export default async function stripeWebhookRoutes(app: App) {
  // The signature covers the exact bytes Stripe sent: keep them, whatever the content type says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post(
    '/stripe',
    {
      config: { providerPayload: true },
      schema: {
        operationId: 'receiveStripeEvent',
        tags: ['webhooks'],
        summary: 'Stripe events (signed with Stripe-Signature)',
        description:
          'Verifies `Stripe-Signature` against the raw body with STRIPE_WEBHOOK_SECRET (300 s tolerance); ' +
          'any failure is 400 `invalid_signature` and nothing is written. Each event is stored once by its id ' +
          'and applied in one transaction: checkout.session.completed / async_payment_succeeded grant the ' +
          "purchase's credits once, async_payment_failed and expired close it, charge.refunded and " +
          'charge.dispute.created claw credits back, charge.dispute.closed (won) grants them back. ' +
          'Other event types are stored and acknowledged. 503 when STRIPE_WEBHOOK_SECRET is unset.',
        headers: Type.Object({ 'stripe-signature': Type.Optional(Type.String()) }),
        response: {
          200: ok(StripeWebhookResultSchema, 'The event was received; `outcome` says what it did'),
          ...errorsWithoutRateLimit(
            [400, '`invalid_signature`: Stripe-Signature missing, wrong or too old; or not a Stripe event'],
            413,
            [503, 'STRIPE_WEBHOOK_SECRET is unset, or the database is unavailable (Stripe retries)'],
          ),
        },
      },
    },
    async (request, reply) => {
      const result = await app.services.stripeWebhooks.handle(
        request.body as Buffer | undefined,
        request.headers['stripe-signature'],
      );
      app.metrics.webhooks.inc({ provider: 'stripe', outcome: result.outcome });
      request.log.info(
        { eventId: result.eventId, type: result.type, outcome: result.outcome },
        'stripe event',
      );
      return reply.ok(result);
    },
  );
}
