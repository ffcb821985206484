import { sql } from 'kysely';
import type { WebhookEventsTable } from './database.ts';
import type { Executor } from './ledger.repository.ts';

/**
 * Stores a provider event once by its id. Returns false when it was stored before: a concurrent delivery
 * of the same event waits here on the primary key until the first transaction ends, then sees it.
 */
export async function claimEvent(
  ex: Executor,
  e: { provider: WebhookEventsTable['provider']; eventId: string; type: string; payload: unknown },
): Promise<boolean> {
  const row = await ex
    .insertInto('webhook_events')
    .values({
      provider: e.provider,
      event_id: e.eventId,
      type: e.type,
      payload: JSON.stringify(e.payload),
      status: 'processed',
    })
    .onConflict((oc) => oc.columns(['provider', 'event_id']).doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Records what handling the event did: processed, ignored (with why), or parked until its purchase is granted. */
export async function settleEvent(
  ex: Executor,
  e: {
    provider: WebhookEventsTable['provider'];
    eventId: string;
    status: WebhookEventsTable['status'];
    note?: string | null;
    purchaseId?: string | null;
  },
) {
  await ex
    .updateTable('webhook_events')
    .set({
      status: e.status,
      note: e.note ?? null,
      purchase_id: e.purchaseId ?? null,
      processed_at: new Date(),
    })
    .where('provider', '=', e.provider)
    .where('event_id', '=', e.eventId)
    .execute();
}

/** Parked events of a purchase, oldest first, locked so that only one transaction replays them. */
export async function parkedEvents(
  ex: Executor,
  provider: WebhookEventsTable['provider'],
  purchaseId: string,
) {
  return ex
    .selectFrom('webhook_events')
    .selectAll()
    .where('provider', '=', provider)
    .where('purchase_id', '=', purchaseId)
    .where('status', '=', 'parked')
    .orderBy('received_at')
    .forUpdate()
    .execute();
}

/**
 * Parked events of a provider whose payload holds `ref` at `path` (e.g. RevenueCat's `event.transaction_id`,
 * for a refund that arrived before its purchase existed), oldest first, locked. The path is written as a literal
 * (callers pass constants) so that an expression index on it could serve the query; the partial index on
 * parked events already bounds it to the few parked rows.
 */
export async function parkedEventsByPayload(
  ex: Executor,
  provider: WebhookEventsTable['provider'],
  path: readonly string[],
  ref: string,
) {
  return ex
    .selectFrom('webhook_events')
    .selectAll()
    .where('provider', '=', provider)
    .where('status', '=', 'parked')
    .where(sql<string>`payload #>> ${sql.lit(`{${path.join(',')}}`)}`, '=', ref)
    .orderBy('received_at')
    .forUpdate()
    .execute();
}
