-- hold.expired: an event in the transaction that expires a hold (lazily, or by the sweeper), as 012 does
-- for ledger entries and purchases. The balance it carries is computed from the holds still active rather
-- than read from accounts.held: the functions that free a hold update the hold and the account in either
-- order, and this must not depend on which. A hold that expires frees credits; it never lowers `available`,
-- so no threshold event can follow from it.
create or replace function events_on_hold_expired() returns trigger language plpgsql as $$
declare
  a record;
  held_now bigint;
begin
  select balance, updated_at into a from accounts where user_id = new.user_id;
  select coalesce(sum(amount), 0) into held_now from holds where user_id = new.user_id and status = 'active';
  insert into events (type, user_id, data)
  values ('hold.expired', new.user_id,
          jsonb_build_object('hold', to_jsonb(new) - 'request_hash' - 'seq',
                             'balance', events_balance(new.user_id, a.balance, held_now, a.updated_at)));
  return null;
end $$;

create trigger holds_events after update of status on holds
  for each row when (old.status = 'active' and new.status = 'expired')
  execute function events_on_hold_expired();
