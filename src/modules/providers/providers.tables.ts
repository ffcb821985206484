import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Timestamp } from '../../db/column-types.ts';
import type { ProviderEventStatus } from './inbox/provider-event-status.ts';

export type EventProvider = 'stripe' | 'revenuecat';
export type EventStatus = ProviderEventStatus;
export type ProviderEventOrigin = 'webhook' | 'reconcile' | 'sync';

/** The provider-event inbox (010_provider_event_inbox.sql). */
export interface ProviderEventsTable {
  provider: EventProvider;
  event_id: string;
  type: string;
  payload: ColumnType<unknown, string, never>;
  status: EventStatus;
  note: string | null;
  purchase_id: string | null;
  received_at: Generated<Date>;
  processed_at: Timestamp | null;
  seq: Generated<number>;
  source: Generated<ProviderEventOrigin>;
  user_id: string | null;
  waiting_for: string | null;
  attempts: Generated<number>;
}

export interface ProviderSyncStateTable {
  name: string;
  high_water: Date | null;
  lease_owner: string | null;
  lease_until: Date | null;
  last_run_at: Date | null;
  last_result: ColumnType<unknown, string | null, string | null> | null;
}

export type ProviderEventRow = Selectable<ProviderEventsTable>;
