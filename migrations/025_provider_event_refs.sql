-- Support finds a purchase by what the customer has: a store transaction id (or the original one), a Stripe
-- PaymentIntent, Checkout Session, charge or receipt number, or the provider's event id. One immutable function
-- lists those references of an event, and a GIN index over it answers `refs @> array[$1]` without a scan.
create or replace function provider_event_refs(event_id text, payload jsonb) returns text[]
language sql immutable parallel safe as $$
  select array_remove(array[
    event_id,
    -- RevenueCat sync events are stored as sync:<store transaction id>
    case when event_id like 'sync:%' then substr(event_id, 6) end,
    -- Stripe: the object's own id (cs_, ch_, pi_, dp_...), and what it names
    payload #>> '{data,object,id}',
    payload #>> '{data,object,payment_intent}',
    payload #>> '{data,object,charge}',
    payload #>> '{data,object,latest_charge}',
    payload #>> '{data,object,receipt_number}',
    -- RevenueCat
    payload #>> '{event,id}',
    payload #>> '{event,transaction_id}',
    payload #>> '{event,original_transaction_id}'
  ]::text[], null)
$$;

create index webhook_events_refs on webhook_events using gin (provider_event_refs(event_id, payload));
