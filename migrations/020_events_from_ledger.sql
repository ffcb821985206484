-- Credit events without a copy per entry (issue 19).
--
-- Until now every ledger entry wrote a JSON copy of itself and of the balance into `events` (a trigger), and a
-- second trigger looked at the endpoints on every such insert: the event machinery cost a debit about a third
-- of its throughput and doubled the bytes it wrote, with no endpoint at all. A credit event reports exactly one
-- ledger entry, and the ledger is already append-only, transactional and keyed, so:
--   * credit events (credits.granted, .debited, .debit_reversed, .clawed_back, .expired) are READ from
--     `ledger_entries`: the event of entry n is `evt_n`. Other events (purchase.*, hold.expired, balance.*)
--     keep their rows, now in `event_rows`. The view `events` is the whole log (same columns as before);
--   * event ids stay unique across both: `event_rows.id` draws from the ledger's id sequence;
--   * deliveries are written in the transaction of the change (no dispatch stage any more), only for enabled
--     endpoints subscribed to the type. Whether any endpoint wants a type is a cached constant, the function
--     events_wanted_types(), rewritten whenever endpoints change; the triggers test it in their WHEN clause,
--     which Postgres folds to a constant when it prepares the statement, so with no endpoint a debit runs
--     no event trigger at all. balance.low's trigger likewise fires only below the highest threshold wanted
--     (events_low_threshold_max()), or at 0 (balance.depleted, always logged).
-- Entries written before this migration keep their copies in event_rows (their ids were delivered), and are
-- not derived a second time: only entries after events_ledger_from() are.

alter table events rename to event_rows;
alter index events_pkey rename to event_rows_pkey;
drop trigger events_unwanted on event_rows;
drop function events_mark_unwanted();
drop trigger ledger_entries_events on ledger_entries;
drop function events_on_ledger_entry();

-- Deliveries of events still waiting for the old dispatch stage: written now, for the endpoints that want them.
insert into webhook_deliveries (endpoint_id, event_id)
select e.id, ev.id from event_rows ev
join webhook_endpoints e on not e.disabled and e.created_at <= ev.created_at
  and (ev.endpoint_id is null or ev.endpoint_id = e.id)
  and (e.events @> array[ev.type] or e.events @> array['*'])
where ev.dispatched_at is null
on conflict (endpoint_id, event_id) do nothing;
drop index events_to_dispatch;
alter table event_rows drop column dispatched_at;

-- One id space: event rows take their ids from the ledger's sequence, past every id used by either.
alter table webhook_deliveries drop constraint webhook_deliveries_event_id_fkey;
alter table event_rows alter column id drop identity;
alter table event_rows alter column id set default nextval(pg_get_serial_sequence('ledger_entries', 'id')::regclass);
do $$
declare
  last_id bigint := greatest((select max(id) from event_rows), (select max(id) from ledger_entries), 0) + 1;
begin
  perform setval(pg_get_serial_sequence('ledger_entries', 'id'), last_id);
  -- Entries with a larger id are events read from the ledger; older ones have their copy in event_rows.
  execute format('create function events_ledger_from() returns bigint language sql immutable parallel safe '
                 'as $f$ select %s::bigint $f$', last_id);
end $$;

-- The log newest first, and an event by id, read the ledger by id (its primary key leads with user_id).
create index ledger_entries_id on ledger_entries (id);

create function events_credit_type(p_type text) returns text language sql immutable parallel safe as $$
  select case p_type
    when 'grant' then 'credits.granted'
    when 'debit' then 'credits.debited'
    when 'reversal' then 'credits.clawed_back'
    when 'expiry' then 'credits.expired'
    when 'debit_reversal' then 'credits.debit_reversed'
  end
$$;

-- What holds reserved right after an entry: the holds made at or before it and not ended at or before it.
-- Every function dates a hold's creation, capture and release with the ts of the entries it writes, so this
-- is the account's `held` as it was when the entry was written (what the old trigger copied).
create function events_held_at(p_user text, p_at timestamptz) returns bigint language sql stable as $$
  select coalesce(sum(amount), 0)::bigint from holds
  where user_id = p_user and created_at <= p_at
    and (status = 'active' or coalesce(captured_at, released_at) > p_at)
$$;

-- A credit event's data, as the old trigger wrote it: the entry and the balance right after it.
create function events_entry_data(e ledger_entries) returns jsonb language sql stable as $$
  select jsonb_build_object('entry', to_jsonb(e) - 'request_hash',
                            'balance', events_balance(e.user_id, e.balance_after,
                                                      events_held_at(e.user_id, e.created_at), e.created_at))
$$;

-- The whole event log: event rows, and credit events read from the ledger.
create view events as
  select id, type, user_id, endpoint_id, data, created_at from event_rows
  union all
  select l.id, events_credit_type(l.type), l.user_id, null::text, events_entry_data(l), l.created_at
  from ledger_entries l where l.id >= events_ledger_from();

-- ------------------------------------------------------------------------------------------ subscriptions

-- The cached answers to "does any endpoint want this?", rewritten by events_refresh_subscriptions().
create function events_wanted_types() returns text[] language sql immutable parallel safe as $$
  select '{}'::text[]
$$;
create function events_low_threshold_max() returns bigint language sql immutable parallel safe as $$
  select 0::bigint
$$;

-- Rewrites both from the enabled endpoints. Endpoint changes are rare (admin calls); they queue on one
-- advisory lock, so each rewrite reads the endpoints as the previous one committed them. Security definer:
-- the functions it rewrites belong to the role that ran the migrations, which need not be the service's.
create function events_refresh_subscriptions() returns trigger language plpgsql
security definer set search_path from current as $$
declare
  wanted text[];
  low bigint;
begin
  perform pg_advisory_xact_lock(hashtext('events_refresh_subscriptions'));
  select coalesce(array_agg(distinct t), '{}') into wanted
  from webhook_endpoints e
  cross join lateral unnest(case when e.events @> array['*'] then array[
    'purchase.completed', 'purchase.failed', 'purchase.expired', 'purchase.refunded', 'purchase.disputed',
    'purchase.dispute_closed', 'credits.granted', 'credits.debited', 'credits.debit_reversed',
    'credits.clawed_back', 'credits.expired', 'hold.expired', 'balance.low', 'balance.depleted']
    else e.events end) t
  where not e.disabled;
  select coalesce(max(t), 0) into low
  from webhook_endpoints e cross join lateral unnest(e.low_balance_thresholds) t
  where not e.disabled and e.events && array['balance.low', '*'];
  if wanted is distinct from events_wanted_types() then
    execute format('create or replace function events_wanted_types() returns text[] language sql immutable '
                   'parallel safe as $f$ select %L::text[] $f$', wanted);
  end if;
  if low is distinct from events_low_threshold_max() then
    execute format('create or replace function events_low_threshold_max() returns bigint language sql '
                   'immutable parallel safe as $f$ select %s::bigint $f$', low);
  end if;
  return null;
end $$;
create trigger webhook_endpoints_subscriptions after insert or update or delete on webhook_endpoints
  for each statement execute function events_refresh_subscriptions();

-- ------------------------------------------------------------------------------------------ fan-out

-- The deliveries of one event, for the enabled endpoints subscribed to its type (and the one it is for).
create function events_fan_out(p_id bigint, p_type text, p_endpoint text) returns void language sql as $$
  insert into webhook_deliveries (endpoint_id, event_id)
  select e.id, p_id from webhook_endpoints e
  where not e.disabled and (p_endpoint is null or p_endpoint = e.id)
    and (e.events @> array[p_type] or e.events @> array['*'])
$$;

create function events_on_ledger_entry() returns trigger language plpgsql as $$
begin
  perform events_fan_out(new.id, events_credit_type(new.type), null);
  return null;
end $$;
create trigger ledger_entries_deliveries after insert on ledger_entries
  for each row when (events_credit_type(new.type) = any(events_wanted_types()))
  execute function events_on_ledger_entry();

create function events_on_event_row() returns trigger language plpgsql as $$
begin
  perform events_fan_out(new.id, new.type, new.endpoint_id);
  return null;
end $$;
create trigger event_rows_deliveries after insert on event_rows
  for each row when (new.type = any(events_wanted_types()))
  execute function events_on_event_row();

-- ------------------------------------------------------------------------------------------ event rows

-- 012's and 013's triggers, writing into event_rows.
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
    insert into event_rows (type, user_id, data)
    values (event_type, new.user_id, jsonb_build_object('purchase', to_jsonb(new), 'previous_status', was));
  end if;
  return null;
end $$;

create or replace function events_on_hold_expired() returns trigger language plpgsql as $$
declare
  a record;
  held_now bigint;
begin
  select balance, updated_at into a from accounts where user_id = new.user_id;
  select coalesce(sum(amount), 0) into held_now from holds where user_id = new.user_id and status = 'active';
  insert into event_rows (type, user_id, data)
  values ('hold.expired', new.user_id,
          jsonb_build_object('hold', to_jsonb(new) - 'request_hash' - 'seq',
                             'balance', events_balance(new.user_id, a.balance, held_now, a.updated_at)));
  return null;
end $$;

create or replace function events_on_available_drop() returns trigger language plpgsql as $$
declare
  was bigint := credits_available(old.balance, old.held);
  now_available bigint := credits_available(new.balance, new.held);
begin
  if now_available <= 0 and was > 0 then
    insert into event_rows (type, user_id, data)
    values ('balance.depleted', new.user_id,
            jsonb_build_object('balance', events_balance(new.user_id, new.balance, new.held, new.updated_at)));
  end if;
  insert into event_rows (type, user_id, endpoint_id, data)
  select 'balance.low', new.user_id, e.id,
         jsonb_build_object('balance', events_balance(new.user_id, new.balance, new.held, new.updated_at),
                            'threshold', t.threshold, 'endpoint_id', e.id)
  from webhook_endpoints e cross join lateral unnest(e.low_balance_thresholds) t(threshold)
  where not e.disabled and e.events && array['balance.low', '*']
    and t.threshold <= was and t.threshold > now_available;
  return null;
end $$;
-- Only a drop to 0, or below the highest threshold an endpoint watches, can be an event.
drop trigger accounts_available_events on accounts;
create trigger accounts_available_events after update of balance, held on accounts
  for each row when (credits_available(new.balance, new.held) < credits_available(old.balance, old.held)
                     and (credits_available(new.balance, new.held) <= 0
                          or credits_available(new.balance, new.held) < events_low_threshold_max()))
  execute function events_on_available_drop();

-- The cache as the endpoints are now.
update webhook_endpoints set disabled = disabled where false;
