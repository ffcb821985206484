import type { Config } from '../../../config.ts';
import { AppError, unavailable } from '../../../errors.ts';
import { msg } from '../../../messages.ts';
import { storableProviderEvent } from '../../../lib/text.ts';
import type { ProviderInbox } from '../inbox/provider-inbox.service.ts';
import type { DeliveryOutcome } from '../inbox/provider-event-status.ts';
import { constructStripeEvent } from './stripe.client.ts';
import { parseStripeEvent } from './stripe-rules.ts';

/** Stripe's signature tolerance: a signed timestamp older or newer than this is refused. */
const TOLERANCE_SECONDS = 300;

export interface StripeWebhookResult {
  received: true;
  eventId: string;
  type: string;
  outcome: DeliveryOutcome;
  duplicate: boolean;
  purchaseId: string | null;
  note: string | null;
}

/** POST /webhooks/stripe: verifies the signature, then hands the event to the inbox. */
export function createStripeWebhookService(config: Config, inbox: ProviderInbox) {
  return {
    /**
     * Verifies, stores once and applies one delivery. A repeated event id answers `duplicate` and changes
     * nothing; concurrent deliveries of one event wait on its primary key, so one applies it.
     */
    async handle(rawBody: Buffer | string | undefined, signature: unknown): Promise<StripeWebhookResult> {
      const secret = config.stripe.webhookSecret;
      if (!secret) throw unavailable('stripe.webhook_not_configured');
      if (typeof signature !== 'string' || signature.length === 0) {
        throw new AppError('invalid_signature', msg('stripe.signature_missing'));
      }
      let raw: unknown;
      try {
        // Stripe's library refuses old timestamps only: one signed for the future is refused here.
        const signedAt = Number(/(?:^|,)\s*t=(\d{1,15})(?:,|$)/.exec(signature)?.[1]);
        if (signedAt > Date.now() / 1000 + TOLERANCE_SECONDS) throw new Error('timestamp in the future');
        raw = constructStripeEvent(rawBody ?? '', signature, secret, TOLERANCE_SECONDS);
      } catch {
        throw new AppError(
          'invalid_signature',
          msg('stripe.signature_invalid', { seconds: TOLERANCE_SECONDS }),
        );
      }
      // Stored as sent where Postgres can store it; NUL and lone surrogates become U+FFFD.
      const payload = storableProviderEvent(raw);
      const event = parseStripeEvent(payload);
      const received = await inbox.receive({
        provider: 'stripe',
        eventId: event.id,
        type: event.type,
        payload,
        source: 'webhook',
      });
      return {
        received: true,
        eventId: event.id,
        type: event.type,
        outcome: received.duplicate ? 'duplicate' : received.status,
        duplicate: received.duplicate,
        purchaseId: received.duplicate ? null : received.purchaseId,
        note: received.note,
      };
    },
  };
}

export type StripeWebhookService = ReturnType<typeof createStripeWebhookService>;
