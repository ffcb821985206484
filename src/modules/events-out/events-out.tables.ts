import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Timestamp } from '../../db/column-types.ts';
import type { DeliveryStatus } from './delivery-status.ts';

/**
 * The event log: the view `events` (migrations/020_events_from_ledger.sql) of the event rows written by triggers
 * and the credit events read from the ledger. Read by the API and the delivery worker; never written.
 */
export interface EventsTable {
  id: Generated<number>;
  type: string;
  user_id: string | null;
  endpoint_id: string | null;
  data: ColumnType<Record<string, unknown>, never, never>;
  created_at: Generated<Date>;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  low_balance_thresholds: ColumnType<number[], number[] | undefined, number[]>;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Timestamp | null;
  disabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type { DeliveryStatus };

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint_id: string;
  event_id: number;
  status: Generated<DeliveryStatus>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  lease_until: Timestamp | null;
  last_attempt_at: Timestamp | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Timestamp | null;
  created_at: Generated<Date>;
}

export type EventRow = Selectable<EventsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
