-- Events out: an event log written by triggers in the transaction of the change it reports, webhook
-- endpoints that subscribe to event types, and one delivery row per (endpoint, event) for the worker.
--
-- Triggers, not calls in the ledger functions: whatever writes a ledger entry, changes a purchase's status or
-- lowers an account's available balance writes its event in the same transaction, so there is no event
-- without its change and no change without its event, even when the process dies right after the commit.
-- The triggers only append one row to `events`; the fan-out to endpoints (deliveries) is the worker's, so
-- the debit path pays the same whether no endpoint or many listen.

-- Holds reserve part of a balance; `available` = balance - held is what debits may spend.
alter table accounts add column if not exists held bigint not null default 0;

-- The one definition of `available`.
create or replace function credits_available(p_balance bigint, p_held bigint) returns bigint
language sql immutable parallel safe as $$ select p_balance - p_held $$;

create table events (
  id bigint generated always as identity primary key,
  type text not null check (type in (
    'purchase.completed', 'purchase.failed', 'purchase.expired', 'purchase.refunded', 'purchase.disputed',
    'purchase.dispute_closed', 'credits.granted', 'credits.debited', 'credits.debit_reversed',
    'credits.clawed_back', 'credits.expired', 'hold.expired', 'balance.low', 'balance.depleted')),
  user_id text,
  -- balance.low is per endpoint threshold: the one endpoint it is for. Null: every subscribed endpoint.
  endpoint_id text,
  -- Rows as the tables hold them (to_jsonb); the service maps them to API resources when it reads them.
  data jsonb not null,
  created_at timestamptz not null default clock_timestamp(),
  -- Set when the worker has created the event's deliveries.
  dispatched_at timestamptz
);
create index events_to_dispatch on events (id) where dispatched_at is null;

create table webhook_endpoints (
  id text primary key,
  url text not null check (length(url) between 1 and 2048),
  description text check (length(description) <= 500),
  events text[] not null check (cardinality(events) between 1 and 20),
  low_balance_thresholds bigint[] not null default '{}' check (cardinality(low_balance_thresholds) <= 10),
  -- Kept in clear: the service signs with it. Shown to the API only when created or rotated.
  secret text not null,
  -- After a rotation the old secret keeps signing (a second signature) until previous_secret_until.
  previous_secret text,
  previous_secret_until timestamptz,
  disabled boolean not null default false,
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_page on webhook_endpoints (created_at desc, id desc);

create table webhook_deliveries (
  id bigint generated always as identity primary key,
  endpoint_id text not null references webhook_endpoints (id) on delete cascade,
  event_id bigint not null references events (id),
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  -- When a pending delivery is due. While an attempt runs it is the attempt's lease (lease_until): a replica
  -- that dies mid-attempt leaves the delivery due again when the lease ends.
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  unique (endpoint_id, event_id)
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_page on webhook_deliveries (endpoint_id, id desc);

-- A balance as events carry it: the cached balance, what holds reserve, and what is available.
create or replace function events_balance(p_user text, p_balance bigint, p_held bigint, p_updated_at timestamptz)
returns jsonb language sql immutable as $$
  select jsonb_build_object('user_id', p_user, 'balance', p_balance, 'held', p_held,
                            'available', credits_available(p_balance, p_held), 'updated_at', p_updated_at)
$$;

-- credits.* for every ledger entry. The account row is locked by the writer already; its `held` is current.
create or replace function events_on_ledger_entry() returns trigger language plpgsql as $$
declare
  event_type text;
  held_now bigint;
begin
  event_type := case new.type
    when 'grant' then 'credits.granted'
    when 'debit' then 'credits.debited'
    when 'reversal' then 'credits.clawed_back'
    when 'expiry' then 'credits.expired'
    when 'debit_reversal' then 'credits.debit_reversed'
  end;
  if event_type is null then
    raise exception 'no event type for ledger entry type %', new.type;
  end if;
  select held into held_now from accounts where user_id = new.user_id;
  insert into events (type, user_id, data)
  values (event_type, new.user_id,
          jsonb_build_object('entry', to_jsonb(new) - 'request_hash',
                             'balance', events_balance(new.user_id, new.balance_after, coalesce(held_now, 0),
                                                       new.created_at)));
  return null;
end $$;
create trigger ledger_entries_events after insert on ledger_entries
  for each row execute function events_on_ledger_entry();

-- purchase.* when a purchase's status changes (or a refunded purchase is refunded further).
create or replace function events_on_purchase() returns trigger language plpgsql as $$
declare
  was text;
  event_type text;
begin
  if tg_op = 'UPDATE' then
    was := old.status;
  end if;
  if was = 'disputed' and new.status <> 'disputed' then
    event_type := 'purchase.dispute_closed';
  elsif was is distinct from new.status then
    event_type := case new.status
      when 'completed' then 'purchase.completed'
      when 'failed' then 'purchase.failed'
      when 'expired' then 'purchase.expired'
      when 'refunded' then 'purchase.refunded'
      when 'partially_refunded' then 'purchase.refunded'
      when 'disputed' then 'purchase.disputed'
    end;
  elsif new.status in ('refunded', 'partially_refunded') and new.credits_reversed > old.credits_reversed then
    event_type := 'purchase.refunded';
  end if;
  if event_type is not null then
    insert into events (type, user_id, data)
    values (event_type, new.user_id, jsonb_build_object('purchase', to_jsonb(new), 'previous_status', was));
  end if;
  return null;
end $$;
create trigger purchases_events after insert or update of status, credits_reversed on purchases
  for each row execute function events_on_purchase();

-- balance.low and balance.depleted when `available` drops (a debit, an expiry, a clawback, a hold).
-- Edge-triggered by construction: the old and new row are the state before and after, under the row lock,
-- so a threshold fires once per crossing from at-or-above to below, and again only after `available` rose
-- back to it (a later drop from below stays below: no crossing).
create or replace function events_on_available_drop() returns trigger language plpgsql as $$
declare
  was bigint := credits_available(old.balance, old.held);
  now_available bigint := credits_available(new.balance, new.held);
begin
  if now_available <= 0 and was > 0 then
    insert into events (type, user_id, data)
    values ('balance.depleted', new.user_id,
            jsonb_build_object('balance', events_balance(new.user_id, new.balance, new.held, new.updated_at)));
  end if;
  insert into events (type, user_id, endpoint_id, data)
  select 'balance.low', new.user_id, e.id,
         jsonb_build_object('balance', events_balance(new.user_id, new.balance, new.held, new.updated_at),
                            'threshold', t.threshold, 'endpoint_id', e.id)
  from webhook_endpoints e cross join lateral unnest(e.low_balance_thresholds) t(threshold)
  where not e.disabled and e.events && array['balance.low', '*']
    and t.threshold <= was and t.threshold > now_available;
  return null;
end $$;
create trigger accounts_available_events after update of balance, held on accounts
  for each row when (credits_available(new.balance, new.held) < credits_available(old.balance, old.held))
  execute function events_on_available_drop();
