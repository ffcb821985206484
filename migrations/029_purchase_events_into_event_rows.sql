-- 020 renamed the table of event rows to `event_rows` (`events` became a view that adds the credit events read
-- from the ledger), while 028, written beside it, re-created the purchase events' trigger function writing into
-- `events`. This is 028's function writing into `event_rows`: the same events, where 020 keeps them.
-- purchase.* when a purchase's status changes, a dispute closes, or the refunded part grows.
create or replace function events_on_purchase() returns trigger language plpgsql as $$
declare
  was text;
  event_type text;
  extra jsonb := '{}';
begin
  if tg_op = 'UPDATE' then
    was := old.status;
  end if;
  if tg_op = 'UPDATE' and (
       (new.dispute_closed_at is not null and new.dispute_closed_at is distinct from old.dispute_closed_at)
       or (was = 'disputed' and new.status <> 'disputed')) then
    event_type := 'purchase.dispute_closed';
    -- A status changed by hand (no closing recorded): won when the dispute's share came back.
    extra := jsonb_build_object('outcome', coalesce(
      case when new.dispute_closed_at is distinct from old.dispute_closed_at then new.dispute_outcome end,
      case when new.credits_reversed < old.credits_reversed then 'won' else 'lost' end));
  elsif was is distinct from new.status then
    event_type := case new.status
      when 'completed' then 'purchase.completed'
      when 'failed' then 'purchase.failed'
      when 'expired' then 'purchase.expired'
      when 'refunded' then 'purchase.refunded'
      when 'partially_refunded' then 'purchase.refunded'
      when 'disputed' then 'purchase.disputed'
    end;
  -- The refunded part (what was asked back, less an open dispute's share) grew: a refund, in any status.
  elsif new.credits_reversed - new.credits_disputed > old.credits_reversed - old.credits_disputed then
    event_type := 'purchase.refunded';
  end if;
  if event_type is not null then
    insert into event_rows (type, user_id, data)
    values (event_type, new.user_id,
            jsonb_build_object('purchase', to_jsonb(new), 'previous_status', was) || extra);
  end if;
  return null;
end $$;
