-- Every provider event, stored once by its id. An event that cannot be applied yet (a refund whose grant
-- has not arrived) is parked and applied when the purchase's grant lands.
create table webhook_events (
  provider text not null check (provider in ('stripe', 'revenuecat')),
  event_id text not null,
  type text not null,
  payload jsonb not null,
  status text not null check (status in ('processed', 'ignored', 'parked')),
  note text,
  purchase_id text,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  primary key (provider, event_id)
);
create index webhook_events_parked on webhook_events (purchase_id, received_at) where status = 'parked';
-- Stripe charge and dispute events that matched no purchase when they arrived (a refund delivered before its
-- checkout.session.completed): the grant finds them again by PaymentIntent and applies them.
create index webhook_events_stripe_payment_intent on webhook_events ((payload #>> '{data,object,payment_intent}'))
  where provider = 'stripe' and status = 'ignored';
