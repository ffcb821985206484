-- Disputes and refunds as the contract tells them (section 5): a dispute closed as lost makes the purchase
-- `refunded` (the buyer has the money back; its credits stay clawed back), every closed dispute sends
-- purchase.dispute_closed with `data.outcome` (`won` or `lost`), and every refund sends purchase.refunded,
-- whatever the purchase's status: a refund arriving while a dispute is open (the status stays `disputed`) and
-- a dispute closed on a purchase that was never `disputed` here (its `created` was missed) report too.
--
-- The purchase records its dispute's closing, so that the trigger sees it in the row like every other change:
-- `dispute_outcome` what it closed as, `dispute_closed_at` when (set once per closing: a change of it is one
-- purchase.dispute_closed).
alter table purchases
  add column dispute_outcome text check (dispute_outcome in ('won', 'lost')),
  add column dispute_closed_at timestamptz;

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
    insert into events (type, user_id, data)
    values (event_type, new.user_id,
            jsonb_build_object('purchase', to_jsonb(new), 'previous_status', was) || extra);
  end if;
  return null;
end $$;

drop trigger purchases_events on purchases;
create trigger purchases_events
  after insert or update of status, credits_reversed, credits_disputed, dispute_closed_at on purchases
  for each row execute function events_on_purchase();
