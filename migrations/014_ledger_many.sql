-- Debits, holds, captures and releases of any accounts in one transaction: the service's group commit.
-- Until now only debits shared a commit (credits_debit_many); a hold and its capture each paid a commit (a WAL
-- flush) and a round trip of their own, so under load a hold+capture pair cost about three debits instead of
-- two. Each item is a full call of its own function (its own replay, 402 and 409), so the results are what the
-- calls would give one by one. Items run in user_id order, then in the order given, as in credits_debit_many:
-- every batch locks accounts in the same order, so batches that share accounts queue, never deadlock, and one
-- account's requests keep the order they arrived in. `n` is the item's 1-based position.
--
-- An item is {o, u, ...}: o is the operation, u the user, then
--   d (debit):   a amount, k idempotency key, h request hash, r reason, m metadata;
--   h (hold):    i hold id, a amount, x seconds to expiry, k, h, r, m;
--   c (capture): i hold id, a amount (null: the whole hold), r reason, m metadata (null: none);
--   r (release): i hold id.
create function credits_ledger_many(p_items jsonb)
returns table (n bigint, outcome text, balance bigint, held bigint, entry jsonb, hold jsonb)
language plpgsql as $$
#variable_conflict use_column
declare
  item record;
  r ledger_outcome;
begin
  for item in
    select e.o, e.u, e.i, e.a, e.x, e.k, e.h, e.r, e.m, e.pos
    from rows from (jsonb_to_recordset(p_items)
                      as (o text, u text, i text, a bigint, x integer, k text, h text, r text, m jsonb))
         with ordinality e(o, u, i, a, x, k, h, r, m, pos)
    order by e.u, e.pos
  loop
    r := case item.o
           when 'd' then credits_debit(item.u, item.a, item.k, item.h, item.r, item.m)
           when 'h' then credits_hold(item.u, item.i, item.a, make_interval(secs => item.x), item.k, item.h,
                                      item.r, item.m)
           when 'c' then credits_capture(item.u, item.i, item.a, item.r, item.m)
           when 'r' then credits_release(item.u, item.i)
         end;
    if r is null then
      raise exception 'credits_ledger_many: unknown operation %', item.o using errcode = '22023';
    end if;
    n := item.pos;
    outcome := r.outcome;
    balance := r.balance;
    held := r.held;
    entry := r.entry;
    hold := r.hold;
    return next;
  end loop;
end $$;
