/** Every event type the service emits (the `events.type` check in db/schema.sql lists the same). */
export const EVENT_TYPES = [
  'purchase.completed',
  'purchase.failed',
  'purchase.expired',
  'purchase.refunded',
  'purchase.disputed',
  'purchase.dispute_closed',
  'credits.granted',
  'credits.debited',
  'credits.debit_reversed',
  'credits.clawed_back',
  'credits.expired',
  'hold.expired',
  'balance.low',
  'balance.depleted',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
