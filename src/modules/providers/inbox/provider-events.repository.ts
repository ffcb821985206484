import { sql } from 'kysely';
import type {
  EventProvider,
  ProviderEventOrigin,
  EventStatus,
  Executor,
  ProviderEventRow,
} from '../../../db/database.ts';

/**
 * Stores a provider event once by (provider, id). Returns false when it was stored before: a concurrent
 * delivery of the same event waits here on the primary key until the first transaction ends, then sees it.
 */
export async function claimEvent(
  ex: Executor,
  e: {
    provider: EventProvider;
    eventId: string;
    type: string;
    payload: unknown;
    source: ProviderEventOrigin;
  },
): Promise<boolean> {
  const row = await ex
    .insertInto('webhook_events')
    .values({
      provider: e.provider,
      event_id: e.eventId,
      type: e.type,
      payload: JSON.stringify(e.payload),
      status: 'processed',
      source: e.source,
    })
    .onConflict((oc) => oc.columns(['provider', 'event_id']).doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return row !== undefined;
}

export interface Settlement {
  status: EventStatus;
  note: string | null;
  purchaseId: string | null;
  userId: string | null;
  waitingFor: string | null;
}

/** Records what handling the event did; `rerun` counts a replay or a wake-up as one more attempt. */
export async function settleEvent(
  ex: Executor,
  provider: EventProvider,
  eventId: string,
  s: Settlement,
  rerun = false,
): Promise<ProviderEventRow> {
  return ex
    .updateTable('webhook_events')
    .set((eb) => ({
      status: s.status,
      note: s.note,
      // A later run that knows less (e.g. failed) keeps what an earlier one learned.
      purchase_id: s.purchaseId ?? eb.ref('purchase_id'),
      user_id: s.userId ?? eb.ref('user_id'),
      waiting_for: s.waitingFor,
      processed_at: new Date(),
      ...(rerun ? { attempts: sql<number>`attempts + 1` } : {}),
    }))
    .where('provider', '=', provider)
    .where('event_id', '=', eventId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Events waiting for any of `keys`, oldest first, locked. SKIP LOCKED: a row locked elsewhere is being replayed
 * by an operator, and that replay runs its handler after this transaction (it queues on the same handler
 * locks), so it sees what this one did.
 */
export async function waitingEvents(ex: Executor, provider: EventProvider, keys: readonly string[]) {
  if (keys.length === 0) return [];
  return ex
    .selectFrom('webhook_events')
    .selectAll()
    .where('provider', '=', provider)
    .where('waiting_for', 'in', [...keys])
    .orderBy('received_at')
    .orderBy('seq')
    .forUpdate()
    .skipLocked()
    .execute();
}

/** One event by its operator id (`pev_<seq>`), locked when asked. */
export async function findProviderEventBySeq(ex: Executor, seq: number, forUpdate = false) {
  let q = ex.selectFrom('webhook_events').selectAll().where('seq', '=', seq);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function findProviderEvent(ex: Executor, provider: EventProvider, eventId: string) {
  return ex
    .selectFrom('webhook_events')
    .selectAll()
    .where('provider', '=', provider)
    .where('event_id', '=', eventId)
    .executeTakeFirst();
}

export interface EventFilter {
  provider?: EventProvider;
  status?: EventStatus;
  type?: string;
  userId?: string;
  /**
   * A reference the customer or support has: store transaction id or original transaction id, Stripe
   * PaymentIntent, Checkout Session, charge or receipt number, or the event id (migration 025, indexed).
   */
  providerRef?: string;
}

/** Newest first (by seq), keyset-paginated; without the payloads. */
export async function listProviderEvents(ex: Executor, f: EventFilter, limit: number, beforeSeq?: number) {
  let q = ex
    .selectFrom('webhook_events')
    .select([
      'seq',
      'provider',
      'event_id',
      'type',
      'status',
      'note',
      'source',
      'user_id',
      'purchase_id',
      'waiting_for',
      'attempts',
      'received_at',
      'processed_at',
    ])
    .orderBy('seq', 'desc')
    .limit(limit + 1);
  if (f.provider) q = q.where('provider', '=', f.provider);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.type) q = q.where('type', '=', f.type);
  if (f.userId) q = q.where('user_id', '=', f.userId);
  if (f.providerRef) {
    q = q.where(sql<boolean>`provider_event_refs(event_id, payload) @> array[${f.providerRef}]::text[]`);
  }
  if (beforeSeq !== undefined) q = q.where('seq', '<', beforeSeq);
  return q.execute();
}
