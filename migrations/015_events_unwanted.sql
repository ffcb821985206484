-- An event that no enabled endpoint wants when it is written is written already dispatched. Every ledger
-- entry writes an event, subscribed or not; left undispatched, each one cost the delivery worker an UPDATE
-- later (a new row version, its index entries and WAL), and under sustained load those updates competed with
-- the requests that wrote the events. Deciding at insert costs one look at webhook_endpoints (a few rows) in
-- the transaction that writes the event. The worker still marks events that became unwanted after they were
-- written (an endpoint disabled, deleted or unsubscribed meanwhile).
create function events_mark_unwanted() returns trigger language plpgsql as $$
begin
  if new.dispatched_at is null and not exists (
    select 1 from webhook_endpoints e
    where not e.disabled
      and (new.endpoint_id is null or new.endpoint_id = e.id)
      and (e.events @> array[new.type] or e.events @> array['*'])
  ) then
    new.dispatched_at := new.created_at;
  end if;
  return new;
end $$;

create trigger events_unwanted before insert on events
  for each row execute function events_mark_unwanted();
