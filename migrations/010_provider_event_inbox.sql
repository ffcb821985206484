-- The provider-event inbox: every Stripe and RevenueCat event (webhook, reconciliation, sync) in one table,
-- stored once by (provider, event_id), with its outcome and what it waits for.
--
-- `waiting_for` is the one encoding of "apply me again when X happens": a key such as `purchase:<id>`,
-- `stripe:payment_intent:<pi>`, `revenuecat:transaction:<tx>`, `revenuecat:refund:<tx>` or
-- `revenuecat:product:<product id>`. The transaction that makes X happen (a grant, a refund, a product
-- mapping) takes the same lock as the event's handler, then re-runs the events waiting for X. An event waiting
-- for something expected is `parked`; one kept only in case (a charge no purchase of ours has named) is
-- `ignored` with a key.
alter table webhook_events drop constraint webhook_events_status_check;
alter table webhook_events add constraint webhook_events_status_check
  check (status in ('processed', 'ignored', 'parked', 'failed'));
-- The operators' id (`pev_<seq>`) and the keyset of the newest-first listing.
alter table webhook_events add column seq bigint generated always as identity;
alter table webhook_events add constraint webhook_events_seq unique (seq);
alter table webhook_events add column source text not null default 'webhook'
  check (source in ('webhook', 'reconcile', 'sync'));
alter table webhook_events add column user_id text;
alter table webhook_events add column waiting_for text;
-- How many times the handler ran on it (1 + replays and wake-ups).
alter table webhook_events add column attempts integer not null default 1 check (attempts >= 1);

update webhook_events set waiting_for = 'purchase:' || purchase_id
  where provider = 'stripe' and status = 'parked' and purchase_id is not null;
update webhook_events set waiting_for = 'stripe:payment_intent:' || (payload #>> '{data,object,payment_intent}')
  where provider = 'stripe' and status = 'ignored' and purchase_id is null
    and type in ('charge.refunded', 'charge.dispute.created', 'charge.dispute.closed')
    and payload #>> '{data,object,payment_intent}' is not null;
update webhook_events set waiting_for = 'revenuecat:transaction:' || (payload #>> '{event,transaction_id}')
  where provider = 'revenuecat' and status = 'parked' and payload #>> '{event,transaction_id}' is not null;
update webhook_events w set user_id = p.user_id from purchases p where p.id = w.purchase_id;

drop index webhook_events_parked;
drop index webhook_events_stripe_payment_intent;
create index webhook_events_waiting on webhook_events (waiting_for, received_at) where waiting_for is not null;
create index webhook_events_status_page on webhook_events (status, seq desc);
create index webhook_events_user_page on webhook_events (user_id, seq desc) where user_id is not null;

-- Periodic provider reads (Stripe reconciliation): a lease, so one replica runs at a time without holding a
-- session lock or a long transaction (safe behind a transaction-mode pooler), and the high-water mark.
create table provider_sync_state (
  name text primary key,
  high_water timestamptz,
  lease_owner text,
  lease_until timestamptz,
  last_run_at timestamptz,
  last_result jsonb
);
