import type { Db, EventRow, PurchaseRow } from '../../db/database.ts';
import { type EntryJson, type HoldJson, toHold, toLedgerEntry } from '../ledger/index.ts';
import { findEvent, listEvents } from './events-out.repository.ts';
import { notFound } from '../../errors.ts';
import type { EventType } from './event-types.ts';
import { toPurchase } from '../purchases/index.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';

type Obj = Record<string, unknown>;

/** The public id of an event: `evt_` and its number. */
export const eventId = (id: number) => `evt_${id}`;

/** The event number in `evt_<n>`, or undefined for anything else. */
export function parseEventId(id: string): number | undefined {
  const match = /^evt_([1-9]\d{0,15})$/.exec(id);
  return match ? Number(match[1]) : undefined;
}

const iso = (value: unknown) =>
  value === null || value === undefined ? null : new Date(value as string).toISOString();

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** A balance as events carry it (db/functions/events_balance.sql). */
function toEventBalance(b: Obj) {
  return {
    userId: b.user_id as string,
    balance: b.balance as number,
    available: b.available as number,
    held: b.held as number,
    updatedAt: iso(b.updated_at),
  };
}

function toEventPurchase(p: Obj) {
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
  return toPurchase({
    ...(p as unknown as PurchaseRow),
    created_at: date(p.created_at) as Date,
    completed_at: date(p.completed_at),
    updated_at: date(p.updated_at) as Date,
  });
}

/** An event's `data` as the API shows it: the resources concerned, mapped as their own routes map them. */
function toEventData(data: Obj): Obj {
  const out: Obj = {};
  for (const [key, value] of Object.entries(data)) {
    const obj = value && typeof value === 'object' ? (value as Obj) : null;
    if (key === 'entry' && obj) out.entry = toLedgerEntry(obj as unknown as EntryJson);
    else if (key === 'purchase' && obj) out.purchase = toEventPurchase(obj);
    else if (key === 'balance' && obj) out.balance = toEventBalance(obj);
    else if (key === 'hold' && obj) out.hold = toHold(obj as unknown as HoldJson);
    else out[camel(key)] = value;
  }
  return out;
}

export type EventLogSource = Pick<EventRow, 'id' | 'type' | 'data' | 'created_at'>;

/** The event as webhooks send it and the event log shows it: `{ id, type, createdAt, data }`. */
export function toEvent(row: EventLogSource) {
  return {
    id: eventId(row.id),
    type: row.type as EventType,
    createdAt: new Date(row.created_at).toISOString(),
    data: toEventData(row.data),
  };
}
export type Event = ReturnType<typeof toEvent>;

/** The service's own event log: events younger than `retentionDays` (EVENTS_RETENTION_DAYS). */
export function createEventsService(db: Db, retentionDays: number) {
  return {
    async list(limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listEvents(db, limit, retentionDays, after?.[0]);
      return toPage(rows, limit, toEvent, (r) => [r.id]);
    },
    async get(id: string) {
      const n = parseEventId(id);
      const row = n === undefined ? undefined : await findEvent(db, n, retentionDays);
      if (!row) throw notFound('event.not_found');
      return toEvent(row);
    },
  };
}
export type EventsService = ReturnType<typeof createEventsService>;
