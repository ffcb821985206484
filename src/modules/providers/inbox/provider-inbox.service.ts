import { sql } from 'kysely';
import type {
  Db,
  EventProvider,
  ProviderEventOrigin,
  Executor,
  ProviderEventRow,
} from '../../../db/database.ts';
import type { ProviderEventStatus } from './provider-event-status.ts';
import {
  claimEvent,
  type EventFilter,
  findProviderEvent,
  findProviderEventBySeq,
  listProviderEvents,
  settleEvent,
  waitingEvents,
} from './provider-events.repository.ts';
import { fromDatabaseError } from '../../../db/errors.ts';
import { AppError, conflict, notFound } from '../../../errors.ts';
import { decodeCursor, toPage } from '../../../lib/pagination.ts';

/** What a provider's handler decided about one event. `failed` is the inbox's, when a handler throws. */
export interface Outcome {
  status: Exclude<ProviderEventStatus, 'failed'>;
  note: string;
  purchaseId?: string | null;
  userId?: string | null;
  /** Run this event again when this key's thing happens (see 010_provider_event_inbox.sql). */
  waitingFor?: string | null;
}

export interface InboxContext {
  trx: Executor;
  /**
   * Runs again, in this transaction, the events of this provider waiting for any of `keys`, in the provider's
   * order; each is settled with its new outcome, its note suffixed with `why`. Returns how many were processed.
   * The caller must hold the lock that the waiting events' handlers take for these keys.
   */
  wake(keys: readonly string[], why: string): Promise<number>;
}

/** A provider's rules: parse a stored payload, then decide, inside the inbox's transaction. */
export interface ProviderHandler<E> {
  /** Throws (an AppError) when the payload is not an event of this provider. */
  parse(payload: unknown): E;
  handle(ctx: InboxContext, event: E): Promise<Outcome>;
  /** The order in which woken events are applied; default: as received. */
  compare?(a: E, b: E): number;
}

export interface Received {
  id: string;
  eventId: string;
  type: string;
  /** The event id was stored before: nothing was done again. */
  duplicate: boolean;
  status: ProviderEventStatus;
  note: string | null;
  purchaseId: string | null;
  userId: string | null;
}

// biome-ignore lint/suspicious/noExplicitAny: each provider parses its own event type
export type Handlers = Record<EventProvider, ProviderHandler<any>>;

/** The operators' id of an event: `pev_<seq>`. */
export const eventPublicId = (seq: number) => `pev_${seq}`;
const seqOf = (id: string): number | undefined => {
  const m = /^pev_(\d{1,15})$/.exec(id);
  return m ? Number(m[1]) : undefined;
};

/**
 * Errors worth retrying the whole delivery for (the provider retries on a 5xx): the database is unreachable,
 * a serialization failure or deadlock, a timeout. Anything else is the event's own problem: it is stored as
 * `failed` with the message, acknowledged, and replayable by an operator.
 */
function isTransient(err: unknown): boolean {
  return fromDatabaseError(err)?.code === 'service_unavailable';
}

function failureNote(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const kind = err instanceof AppError ? err.code : err instanceof Error ? err.name : 'error';
  return `handler failed (${kind}): ${message}`.slice(0, 1000);
}

export const toProviderEvent = (row: Omit<ProviderEventRow, 'payload'>) => ({
  id: eventPublicId(row.seq),
  provider: row.provider,
  eventId: row.event_id,
  type: row.type,
  status: row.status,
  note: row.note,
  source: row.source,
  userId: row.user_id,
  purchaseId: row.purchase_id,
  waitingFor: row.waiting_for,
  attempts: row.attempts,
  receivedAt: row.received_at.toISOString(),
  processedAt: row.processed_at ? new Date(row.processed_at).toISOString() : null,
});
export type ProviderEvent = ReturnType<typeof toProviderEvent>;

interface InboxHooks {
  /** An event whose handler failed for good (stored as `failed`): logs. */
  onFailed?: (e: { provider: EventProvider; eventId: string; type: string; note: string }) => void;
}

/** A handler's outcome as the inbox settles it. */
type Settled = Required<Omit<Outcome, 'status'>> & { status: ProviderEventStatus };

/** Runs the handler under a savepoint: a handler that throws for good leaves the event `failed`, not lost. */
async function applyHandler(
  handlers: Handlers,
  hooks: InboxHooks,
  ctx: InboxContext,
  provider: EventProvider,
  payload: unknown,
): Promise<Settled> {
  const handler = handlers[provider];
  await sql`savepoint provider_event`.execute(ctx.trx);
  try {
    const outcome = await handler.handle(ctx, handler.parse(payload));
    await sql`release savepoint provider_event`.execute(ctx.trx);
    return {
      status: outcome.status,
      note: outcome.note,
      purchaseId: outcome.purchaseId ?? null,
      userId: outcome.userId ?? null,
      waitingFor: outcome.waitingFor ?? null,
    };
  } catch (err) {
    if (isTransient(err)) throw err;
    await sql`rollback to savepoint provider_event`.execute(ctx.trx);
    const note = failureNote(err);
    const e = payload as { id?: unknown; type?: unknown; event?: { id?: unknown; type?: unknown } } | null;
    hooks.onFailed?.({
      provider,
      eventId: String(e?.id ?? e?.event?.id ?? 'unknown'),
      type: String(e?.type ?? e?.event?.type ?? 'unknown'),
      note,
    });
    return { status: 'failed', note, purchaseId: null, userId: null, waitingFor: null };
  }
}

/** An inbox context on a transaction: its `wake` runs waiting events again through `applyHandler`. */
function inboxContext(
  handlers: Handlers,
  hooks: InboxHooks,
  trx: Executor,
  provider: EventProvider,
): InboxContext {
  const ctx: InboxContext = {
    trx,
    async wake(keys, why) {
      const rows = await waitingEvents(trx, provider, keys);
      const handler = handlers[provider];
      const parsed = rows.map((row) => {
        try {
          return { row, event: handler.parse(row.payload) as unknown };
        } catch {
          return { row, event: undefined }; // settled `failed` by applyHandler below
        }
      });
      const compare = handler.compare as ((x: unknown, y: unknown) => number) | undefined;
      if (compare) {
        parsed.sort((a, b) =>
          a.event === undefined || b.event === undefined
            ? Number(a.event === undefined) - Number(b.event === undefined)
            : compare(a.event, b.event),
        );
      }
      let processed = 0;
      for (const { row } of parsed) {
        // A handler woken earlier in this loop may have run this one already (a refund waking its reversal).
        const now = await findProviderEvent(trx, provider, row.event_id);
        if (!now?.waiting_for || !keys.includes(now.waiting_for)) continue;
        const result = await applyHandler(handlers, hooks, ctx, provider, row.payload);
        await settleEvent(
          trx,
          provider,
          row.event_id,
          { ...result, note: `${result.note} (${why}; was ${now.status})` },
          true,
        );
        if (result.status === 'processed') processed++;
      }
      return processed;
    },
  };
  return ctx;
}

/**
 * The provider-event inbox: every provider event (webhook, reconciliation, sync, replay) enters here. It is
 * stored once by (provider, id); its provider's handler runs in the same transaction as its ledger effects,
 * under a savepoint; the outcome is settled as processed, ignored, parked or failed with a note.
 */
export function createProviderInbox(db: Db, handlers: Handlers, hooks: InboxHooks = {}) {
  const apply = (ctx: InboxContext, provider: EventProvider, payload: unknown) =>
    applyHandler(handlers, hooks, ctx, provider, payload);
  const context = (trx: Executor, provider: EventProvider) => inboxContext(handlers, hooks, trx, provider);

  return {
    /** Stores the event once and runs its handler in the same transaction; a stored id does nothing again. */
    async receive(e: {
      provider: EventProvider;
      eventId: string;
      type: string;
      payload: unknown;
      source: ProviderEventOrigin;
    }): Promise<Received> {
      return db.transaction().execute(async (trx) => {
        const fresh = await claimEvent(trx, e);
        if (!fresh) {
          const prior = await findProviderEvent(trx, e.provider, e.eventId);
          return {
            id: prior ? eventPublicId(prior.seq) : '',
            eventId: e.eventId,
            type: e.type,
            duplicate: true,
            status: prior?.status ?? 'processed',
            note: 'event already received',
            purchaseId: prior?.purchase_id ?? null,
            userId: prior?.user_id ?? null,
          };
        }
        const result = await apply(context(trx, e.provider), e.provider, e.payload);
        const row = await settleEvent(trx, e.provider, e.eventId, result);
        return {
          id: eventPublicId(row.seq),
          eventId: e.eventId,
          type: e.type,
          duplicate: false,
          status: row.status,
          note: row.note,
          purchaseId: row.purchase_id,
          userId: row.user_id,
        };
      });
    },

    /** An inbox context on a transaction the caller owns (e.g. the one that maps a RevenueCat product). */
    within: (trx: Executor, provider: EventProvider) => context(trx, provider),

    /** Runs `fn` in a transaction with an inbox context (for paths that act without an event, e.g. the return page). */
    run<T>(provider: EventProvider, fn: (ctx: InboxContext) => Promise<T>): Promise<T> {
      return db.transaction().execute((trx) => fn(context(trx, provider)));
    },

    /**
     * Applies a stored event again now (an operator's replay): 409 when it was processed. Its handler keeps its
     * grant keys, so a replay never grants twice.
     */
    async replay(id: string): Promise<ProviderEvent> {
      const seq = seqOf(id);
      if (seq === undefined) throw notFound('provider_event.not_found');
      return db.transaction().execute(async (trx) => {
        const row = await findProviderEventBySeq(trx, seq, true);
        if (!row) throw notFound('provider_event.not_found');
        if (row.status === 'processed') throw conflict('provider_event.already_processed');
        const result = await apply(context(trx, row.provider), row.provider, row.payload);
        const settled = await settleEvent(
          trx,
          row.provider,
          row.event_id,
          { ...result, note: `${result.note} (replayed; was ${row.status})` },
          true,
        );
        return toProviderEvent(settled);
      });
    },

    async get(id: string): Promise<ProviderEvent & { payload: unknown }> {
      const seq = seqOf(id);
      const row = seq === undefined ? undefined : await findProviderEventBySeq(db, seq);
      if (!row) throw notFound('provider_event.not_found');
      return { ...toProviderEvent(row), payload: row.payload };
    },

    async list(filter: EventFilter, limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listProviderEvents(db, filter, limit, after?.[0]);
      return toPage(rows, limit, toProviderEvent, (r) => [r.seq]);
    },
  };
}

export type ProviderInbox = ReturnType<typeof createProviderInbox>;
