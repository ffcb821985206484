import { type Static, Type } from '@sinclair/typebox';
import { badRequest } from '../../../errors.ts';
import { deliveryOutcomeSchema } from '../inbox/provider-event-status.ts';

const Text = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/**
 * A RevenueCat webhook body. Only `event.id` and `event.type` are required; every other field is optional
 * and unknown fields are kept, since RevenueCat adds fields without notice.
 */
export const RevenuecatWebhookBody = Type.Object(
  {
    api_version: Type.Optional(Type.String()),
    event: Type.Object(
      {
        id: Type.String({ minLength: 1, maxLength: 255, description: 'Unique per event; retries keep it' }),
        type: Type.String({ minLength: 1, maxLength: 100, description: 'e.g. NON_RENEWING_PURCHASE' }),
        app_user_id: Text,
        original_app_user_id: Text,
        aliases: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
        product_id: Text,
        transaction_id: Text,
        environment: Text,
        store: Text,
        cancel_reason: Text,
        price: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        price_in_purchased_currency: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        currency: Text,
        purchased_at_ms: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        event_timestamp_ms: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);
export type RevenuecatWebhookBody = Static<typeof RevenuecatWebhookBody>;
export type RevenuecatEvent = RevenuecatWebhookBody['event'];

export const RevenuecatDeliveryResult = Type.Object({
  eventId: Type.String(),
  type: Type.String(),
  outcome: deliveryOutcomeSchema('duplicate: the event id was stored before, nothing was done again'),
  note: Type.Union([Type.String(), Type.Null()]),
  purchaseId: Type.Union([Type.String(), Type.Null()]),
});
export type RevenuecatDeliveryResult = Static<typeof RevenuecatDeliveryResult>;

/** Parses a stored RevenueCat body (the webhook's schema already checked a live one). */
export function parseRevenuecatEvent(payload: unknown): RevenuecatEvent {
  const event = (payload as { event?: unknown } | null)?.event as RevenuecatEvent | undefined;
  if (!event || typeof event.id !== 'string' || typeof event.type !== 'string') {
    throw badRequest('revenuecat.event_invalid');
  }
  return event;
}
