import type { ProviderInbox } from '../inbox/provider-inbox.service.ts';
import type { RevenuecatDeliveryResult, RevenuecatWebhookBody } from './revenuecat-event.ts';

const PROVIDER = 'revenuecat' as const;

/** POST /webhooks/revenuecat: the inbox stores each delivery once by event id and runs the handler. */
export function createRevenuecatWebhookService(inbox: ProviderInbox) {
  return {
    /** Stores the event once by id and applies it, in one transaction; a stored id does nothing again. */
    async handle(body: RevenuecatWebhookBody): Promise<RevenuecatDeliveryResult> {
      const { event } = body;
      const r = await inbox.receive({
        provider: PROVIDER,
        eventId: event.id,
        type: event.type,
        payload: body,
        source: 'webhook',
      });
      return {
        eventId: event.id,
        type: event.type,
        outcome: r.duplicate ? 'duplicate' : r.status,
        note: r.note,
        purchaseId: r.duplicate ? null : r.purchaseId,
      };
    },
  };
}
export type RevenuecatWebhookService = ReturnType<typeof createRevenuecatWebhookService>;
