-- The event triggers' switches, cheap to test (issue 19).
--
-- 020 gated the credit and balance triggers with WHEN clauses built from SQL functions
-- (events_credit_type(new.type) = any(events_wanted_types()), credits_available(...) four times and
-- events_low_threshold_max()), expecting Postgres to fold them once. It folds them each time it prepares the
-- statement, and a trigger's WHEN is prepared again on every execution of the INSERT or UPDATE that fires it,
-- so every debit inlined or ran six SQL function bodies (parsed from their text each time) to decide that no
-- endpoint wanted anything: pgbench measured credits_debit() at 0.73-0.81 of the same function with the
-- triggers off, with no endpoint at all.
--
-- Now the WHEN clauses are plain comparisons of the row's columns with two constants, each the result of a
-- PL/pgSQL function (whose compiled form the session keeps) that events_refresh_subscriptions() rewrites when
-- endpoints change:
--   * events_wanted_entry_types(): the ledger entry types whose credit event some enabled endpoint wants;
--   * events_low_threshold_max(): the highest balance.low threshold watched (was SQL, now PL/pgSQL).
-- events_wanted_types() (the event types wanted) becomes PL/pgSQL too; event_rows' trigger tests it.

create or replace function events_wanted_types() returns text[] language plpgsql immutable parallel safe as $$
begin
  return '{}'::text[];
end $$;

create or replace function events_low_threshold_max() returns bigint language plpgsql immutable parallel safe as $$
begin
  return 0::bigint;
end $$;

create function events_wanted_entry_types() returns text[] language plpgsql immutable parallel safe as $$
begin
  return '{}'::text[];
end $$;

-- As in 020, plus the ledger's entry types, and each constant written as a PL/pgSQL function.
create or replace function events_refresh_subscriptions() returns trigger language plpgsql
security definer set search_path from current as $$
declare
  wanted text[];
  entry_types text[];
  low bigint;
begin
  perform pg_advisory_xact_lock(hashtext('events_refresh_subscriptions'));
  select coalesce(array_agg(distinct t order by t), '{}') into wanted
  from webhook_endpoints e
  cross join lateral unnest(case when e.events @> array['*'] then array[
    'purchase.completed', 'purchase.failed', 'purchase.expired', 'purchase.refunded', 'purchase.disputed',
    'purchase.dispute_closed', 'credits.granted', 'credits.debited', 'credits.debit_reversed',
    'credits.clawed_back', 'credits.expired', 'hold.expired', 'balance.low', 'balance.depleted']
    else e.events end) t
  where not e.disabled;
  select coalesce(array_agg(l order by l), '{}') into entry_types
  from unnest(array['grant', 'debit', 'reversal', 'expiry', 'debit_reversal']) l
  where events_credit_type(l) = any(wanted);
  select coalesce(max(t), 0) into low
  from webhook_endpoints e cross join lateral unnest(e.low_balance_thresholds) t
  where not e.disabled and e.events && array['balance.low', '*'];
  if wanted is distinct from events_wanted_types() then
    execute format('create or replace function events_wanted_types() returns text[] language plpgsql '
                   'immutable parallel safe as $f$ begin return %L::text[]; end $f$', wanted);
  end if;
  if entry_types is distinct from events_wanted_entry_types() then
    execute format('create or replace function events_wanted_entry_types() returns text[] language plpgsql '
                   'immutable parallel safe as $f$ begin return %L::text[]; end $f$', entry_types);
  end if;
  if low is distinct from events_low_threshold_max() then
    execute format('create or replace function events_low_threshold_max() returns bigint language plpgsql '
                   'immutable parallel safe as $f$ begin return %s::bigint; end $f$', low);
  end if;
  return null;
end $$;

drop trigger ledger_entries_deliveries on ledger_entries;
create trigger ledger_entries_deliveries after insert on ledger_entries
  for each row when (new.type = any(events_wanted_entry_types()))
  execute function events_on_ledger_entry();

-- Available is balance - held (credits_available), written out: only a drop to 0, or below the highest
-- threshold an endpoint watches, can be an event.
drop trigger accounts_available_events on accounts;
create trigger accounts_available_events after update of balance, held on accounts
  for each row when (new.balance - new.held < old.balance - old.held
                     and (new.balance - new.held <= 0
                          or new.balance - new.held < events_low_threshold_max()))
  execute function events_on_available_drop();

-- The constants as the endpoints are now.
update webhook_endpoints set disabled = disabled where false;
