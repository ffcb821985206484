-- The group commit's idempotency probe, one index lookup per item whatever the statistics say (issue 19).
--
-- 021 probed the keys already used with a lateral subquery, meant as one lookup of (user_id, idempotency_key)
-- per item. The planner may flatten a lateral subquery into a plain join, and it did: it guesses 100 rows for
-- jsonb_to_recordset, so 100 index probes cost more than one pass over a ledger its statistics say is small,
-- and it chose a hash join over a sequential scan of ledger_entries. The statistics are old the moment the
-- ledger grows (autovacuum analyzes at 10% growth at best), so on a young or fast-growing ledger every call
-- of the group commit read the whole table: under the bench's spread debits, 4.1 ms of a 6.8 ms call, more
-- with every debit written. `offset 0` keeps the subquery apart, so it runs once per item as an index scan of
-- the unique key (0.05 ms for a call of 4). Nothing else changes.

create or replace function credits_ledger_many(p_items jsonb)
returns table (n bigint, outcome text, balance bigint, held bigint, entry jsonb, hold jsonb)
language plpgsql as $$
#variable_conflict use_column
declare
  it record;
  r ledger_outcome;
  ts timestamptz;
  acc_user text[];
  acc_bal bigint[];
  acc_held bigint[];
  slow text[];
  prior_uk text[];
  prior_hash text[];
  prior_entry jsonb[];
  prior_after bigint[];
  ai integer;
  pi integer;
  -- The debits to write, in user order then arrival order.
  c_pos bigint[] := '{}';
  c_user text[] := '{}';
  c_amt bigint[] := '{}';
  c_key text[] := '{}';
  c_hash text[] := '{}';
  c_reason text[] := '{}';
  c_meta jsonb[] := '{}';
  c_after bigint[] := '{}';
  c_held bigint[] := '{}';
  w record;
begin
  -- 2. Every account of the call, locked in user_id order (LockRows runs above the sort).
  select coalesce(array_agg(a.user_id), '{}'), coalesce(array_agg(a.balance), '{}'), coalesce(array_agg(a.held), '{}')
  into acc_user, acc_bal, acc_held
  from (select user_id, balance, held from accounts
        where user_id = any(array(select distinct e.u from jsonb_to_recordset(p_items) as e(u text)))
        order by user_id for update) a;
  -- Read once the locks are held: nothing written here may be dated before what held them.
  ts := clock_timestamp();

  -- 3. Accounts on the general path.
  select coalesce(array_agg(distinct x.u), '{}') into slow from (
    select e.u from jsonb_to_recordset(p_items) as e(o text, u text, k text)
    group by e.u, e.k having count(*) > 1 or e.k is null or bool_or(e.o <> 'd')
    union all
    select h.user_id from holds h
    where h.user_id = any(acc_user) and h.status = 'active' and h.expires_at <= ts
    union all
    select l.user_id from credit_lots l
    where l.user_id = any(acc_user) and not l.empty and l.remaining > l.held
      and l.expires_at <= ts + interval '1 second'
  ) x;

  -- 4. Keys already used, for every debit of the other accounts.
  select coalesce(array_agg(l.user_id || E'\x1f' || l.idempotency_key), '{}'),
         coalesce(array_agg(l.request_hash), '{}'), coalesce(array_agg(to_jsonb(l)), '{}'),
         coalesce(array_agg(l.balance_after), '{}')
  into prior_uk, prior_hash, prior_entry, prior_after
  from jsonb_to_recordset(p_items) as e(u text, k text)
  -- Lateral: one probe of the (user_id, idempotency_key) key per item, never a scan of a user's history.
  -- offset 0: never flattened into a join the planner may run as a scan of the ledger (033).
  cross join lateral (select * from ledger_entries x where x.user_id = e.u and x.idempotency_key = e.k offset 0) l
  where not (e.u = any(slow));

  -- 5. Each item in user order, then arrival order.
  for it in
    select e.o, e.u, e.i, e.a, e.x, e.k, e.h, e.r, e.m, e.pos
    from rows from (jsonb_to_recordset(p_items)
                      as (o text, u text, i text, a bigint, x integer, k text, h text, r text, m jsonb))
         with ordinality e(o, u, i, a, x, k, h, r, m, pos)
    order by e.u, e.pos
  loop
    n := it.pos;
    hold := null;
    if it.u = any(slow) then
      r := case it.o
             when 'd' then credits_debit(it.u, it.a, it.k, it.h, it.r, it.m)
             when 'h' then credits_hold(it.u, it.i, it.a, make_interval(secs => it.x), it.k, it.h, it.r, it.m)
             when 'c' then credits_capture(it.u, it.i, it.a, it.r, it.m)
             when 'r' then credits_release(it.u, it.i)
           end;
      if r is null then
        raise exception 'credits_ledger_many: unknown operation %', it.o using errcode = '22023';
      end if;
      outcome := r.outcome;
      balance := r.balance;
      held := r.held;
      entry := r.entry;
      hold := r.hold;
      return next;
      continue;
    end if;
    ai := array_position(acc_user, it.u);
    pi := array_position(prior_uk, it.u || E'\x1f' || it.k);
    entry := null;
    if ai is null then
      outcome := 'insufficient';
      balance := 0;
      held := 0;
    elsif pi is not null then
      -- A replay answers the first result again (the balance right after that entry); another body is 409.
      held := acc_held[ai];
      entry := prior_entry[pi];
      if prior_hash[pi] is not distinct from it.h then
        outcome := 'replayed';
        balance := prior_after[pi];
      else
        outcome := 'key_reused';
        balance := acc_bal[ai];
      end if;
    elsif acc_bal[ai] - acc_held[ai] >= it.a then
      acc_bal[ai] := acc_bal[ai] - it.a;
      c_pos := c_pos || it.pos;
      c_user := c_user || it.u;
      c_amt := c_amt || it.a;
      c_key := c_key || it.k;
      c_hash := c_hash || it.h;
      c_reason := c_reason || it.r;
      c_meta := c_meta || coalesce(it.m, '{}');
      c_after := c_after || acc_bal[ai];
      c_held := c_held || acc_held[ai];
      continue; -- answered once written (6)
    else
      outcome := 'insufficient';
      balance := acc_bal[ai] - acc_held[ai];
      held := acc_held[ai];
    end if;
    return next;
  end loop;
  if cardinality(c_pos) = 0 then
    return;
  end if;

  -- 6. The debits of the fast accounts, all at once. Debit j of an account takes the credits in
  -- [hi_j - amount_j, hi_j) of the account's consumption (hi_j = its debits' running sum); lot k holds the
  -- credits in [lhi_k - free_k, lhi_k) of the account's spendable credits in spend order (soonest expiry,
  -- then oldest); a debit takes from each lot what the two ranges share.
  for w in
    with c as (
      select c.*, sum(c.a) over (partition by c.u order by c.seq) as hi
      from unnest(c_pos, c_user, c_amt, c_key, c_hash, c_reason, c_meta, c_after, c_held)
             with ordinality c(pos, u, a, k, h, r, m, after, hld, seq)
    ), lots as (
      select l.user_id, l.id, l.remaining - l.held as free,
             sum(l.remaining - l.held) over (partition by l.user_id order by l.expires_at, l.id) as lhi
      from credit_lots l
      where l.user_id = any(c_user) and not l.empty and l.remaining > l.held
    ), takes as (
      select c.pos, c.u, lots.id as lot,
             least(c.hi, lots.lhi) - greatest(c.hi - c.a, lots.lhi - lots.free) as amount
      from c join lots on lots.user_id = c.u and lots.lhi - lots.free < c.hi and lots.lhi > c.hi - c.a
    ), per_debit as (
      select t.pos, count(*) as lots, min(t.lot) as lot, sum(t.amount) as taken from takes t group by t.pos
    ), lot_updates as (
      update credit_lots l set remaining = l.remaining - t.amount
      from (select u, lot, sum(amount) as amount from takes group by u, lot) t
      where l.user_id = t.u and l.id = t.lot
    ), entries as (
      insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key,
                                  request_hash, metadata, lot_id, created_at)
      -- One microsecond apart, in order: entries of one account never share a time.
      select c.u, 'debit', -c.a, c.after, 'api', c.r, c.k, c.h, c.m, case when p.lots = 1 then p.lot end,
             ts + c.seq * interval '1 microsecond'
      from c join per_debit p on p.pos = c.pos
      order by c.seq
      returning id, user_id, idempotency_key, lot_id, to_jsonb(ledger_entries) as j
    ), parts as (
      insert into debit_lots (user_id, entry_id, lot_id, amount)
      select t.u, e.id, t.lot, t.amount
      from takes t join c on c.pos = t.pos join entries e on e.user_id = c.u and e.idempotency_key = c.k
      where e.lot_id is null
    ), account_updates as (
      update accounts a set balance = x.after, updated_at = x.at
      from (select u, min(after) as after, ts + max(seq) * interval '1 microsecond' as at from c group by u) x
      where a.user_id = x.u
    )
    select c.pos, c.u, c.after, c.hld, e.j, coalesce(p.taken, 0) = c.a as covered
    from c left join per_debit p on p.pos = c.pos
    left join entries e on e.user_id = c.u and e.idempotency_key = c.k
  loop
    if not w.covered then
      raise exception 'credit lots of % do not cover the balance', w.u;
    end if;
    n := w.pos;
    outcome := 'created';
    balance := w.after;
    held := w.hld;
    entry := w.j;
    hold := null;
    return next;
  end loop;
end $$;
