-- Cheaper debits, holds and captures. Same functions, same signatures, same answers, fewer statements on the
-- common path (each statement a plpgsql function runs costs an executor start, a snapshot and a plan lookup,
-- and an IF with an EXISTS is a whole query too; these functions are short enough for that to show):
--   * a debit or a hold that the first lot in spend order covers is the account lock and ONE statement: the
--     idempotency probe, the entry (or hold) insert, the lot update and the account update together in
--     data-modifying CTEs;
--   * a hold reserved from one lot names it on the hold row (holds.lot_id) instead of a hold_lots row, so the
--     hold writes one row less and its capture or release deletes none; a hold from several lots still has a
--     row per lot (the table is now hold_lot_parts; `hold_lots` is a view of both, for readers such as
--     ledger:verify and credits_balance);
--   * a capture of such a hold is the account lock and one statement: the hold's update decides (active, not
--     due, amount in range) and the lot, account and entry follow from what it returns;
--   * lazy hold expiry is skipped without a query when nothing is held (accounts.held = 0), or, for a capture,
--     when this hold is the account's only active one (accounts.held = its amount) and not due.
-- Anything else (a due lot or hold, several lots, a key replayed, too little to spend) takes the general
-- path, which is 007's.

alter table holds add column lot_id bigint;
comment on column holds.lot_id is
  'The one lot a hold reserved all its credits from; null when it reserved from several (hold_lot_parts rows).';

alter table hold_lots rename to hold_lot_parts;
-- What each active hold reserves from each lot, whichever way it is recorded (ledger:verify, credits_balance).
create view hold_lots as
  select user_id, id as hold_id, lot_id, amount from holds where lot_id is not null and status = 'active'
  union all
  select user_id, hold_id, lot_id, amount from hold_lot_parts;

-- The hold as the API layer reads it: its columns but seq, request_hash, idempotency_key and lot_id. Built
-- key by key, at about half the cost of to_jsonb(h) less four keys (each `-` copies the object). Stable, not
-- immutable: a timestamptz's JSON depends on TimeZone, and an immutable SQL function whose body is only
-- stable is never inlined (it ran as a function call of its own in every hold and capture).
create or replace function credits_hold_json(h holds) returns jsonb language sql stable as $$
  select jsonb_build_object('user_id', h.user_id, 'id', h.id, 'amount', h.amount,
                            'captured_amount', h.captured_amount, 'status', h.status, 'reason', h.reason,
                            'metadata', h.metadata, 'created_at', h.created_at, 'expires_at', h.expires_at,
                            'captured_at', h.captured_at, 'released_at', h.released_at, 'entry_id', h.entry_id)
$$;

-- Ends an active hold without spending it (status released or expired): frees what it reserved, then
-- expires at once the freed credits whose lot is past its expiry. Account row locked by the caller.
create or replace function credits_free_hold(p_user text, p_hold text, p_status text, p_ts timestamptz)
returns holds language plpgsql as $$
declare
  h holds;
begin
  update holds set status = p_status, released_at = p_ts
  where user_id = p_user and id = p_hold and status = 'active'
  returning * into h;
  if h.lot_id is not null then
    update credit_lots set held = held - h.amount where user_id = p_user and id = h.lot_id;
  else
    update credit_lots l set held = l.held - hl.amount
    from hold_lot_parts hl
    where hl.user_id = p_user and hl.hold_id = p_hold and l.user_id = p_user and l.id = hl.lot_id;
    delete from hold_lot_parts where user_id = p_user and hold_id = p_hold;
  end if;
  update accounts set held = held - h.amount where user_id = p_user;
  perform credits_expire_due(p_user);
  return h;
end $$;

-- Spends credits: never beyond `available`, never an expired lot, soonest-expiring lots first, then the
-- oldest. The common case (nothing held that is due, the first lot in spend order covers the debit and is
-- not due, the key is new) is one statement after the lock; anything else goes through the lot loop.
create or replace function credits_debit(p_user text, p_amount bigint, p_key text, p_hash text, p_reason text,
                                         p_metadata jsonb, p_source text default 'api')
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  prior ledger_entries;
  t record;
  ts timestamptz;
  lot bigint;
  entry jsonb;
  new_id bigint;
  fast boolean;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, 0, null, null)::ledger_outcome;
  end if;
  -- Read once the lock is held: a debit that queued behind another must not be dated before it.
  ts := clock_timestamp();
  -- Conditions as plain expressions (an EXISTS makes plpgsql run a whole query for the IF): the hold probe
  -- only when something is held.
  fast := bal - hld >= p_amount;
  if fast and hld > 0 then
    fast := not exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts);
  end if;
  if fast then
    -- The first lot with spendable credits: due lots sort first, so when it is not due, none is. The
    -- idempotency probe is part of the statement (whose snapshot is taken once the account is locked, so it
    -- sees every debit that held the lock before): a key already used writes nothing, and the general path
    -- below reads the earlier entry and answers it.
    with first_lot as (
      select id, remaining - held as free, expires_at from credit_lots
      where user_id = p_user and not empty and remaining > held
      order by expires_at, id limit 1
    ), e as (
      insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key,
                                  request_hash, metadata, lot_id, created_at)
      select p_user, 'debit', -p_amount, bal - p_amount, p_source, p_reason, p_key, p_hash,
             coalesce(p_metadata, '{}'), f.id, ts
      from first_lot f
      where f.free >= p_amount and (f.expires_at is null or f.expires_at > ts)
        and not exists (select 1 from ledger_entries k where k.user_id = p_user and k.idempotency_key = p_key)
      returning lot_id, to_jsonb(ledger_entries) as j
    ), l as (
      update credit_lots set remaining = remaining - p_amount
      where user_id = p_user and id = (select e.lot_id from e)
    ), a as (
      update accounts set balance = bal - p_amount, updated_at = ts
      where user_id = p_user and exists (select from e)
    )
    select e.j into entry from e;
    if entry is not null then
      return ('created', bal - p_amount, hld, entry, null)::ledger_outcome;
    end if;
  end if;
  if p_key is not null then
    select * into prior from ledger_entries where user_id = p_user and idempotency_key = p_key;
    if found then
      -- A replay answers the first result again: the balance right after that entry, not today's.
      if prior.request_hash is not distinct from p_hash then
        return ('replayed', prior.balance_after, hld, to_jsonb(prior), null)::ledger_outcome;
      end if;
      return ('key_reused', bal, hld, to_jsonb(prior), null)::ledger_outcome;
    end if;
  end if;
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
  end if;
  t := credits_take_lots(p_user, p_amount, ts, bal, hld);
  if t.taken = 0 then
    if t.bal <> bal then
      update accounts set balance = t.bal, updated_at = ts where user_id = p_user;
    end if;
    return ('insufficient', t.bal - hld, hld, null, null)::ledger_outcome;
  end if;
  bal := t.bal - p_amount;
  if cardinality(t.lot_ids) = 1 then lot := t.lot_ids[1]; end if;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key, request_hash,
                              metadata, lot_id, created_at)
  values (p_user, 'debit', -p_amount, bal, p_source, p_reason, p_key, p_hash, coalesce(p_metadata, '{}'), lot, ts)
  returning id, to_jsonb(ledger_entries) into new_id, entry;
  if lot is null then
    insert into debit_lots (user_id, entry_id, lot_id, amount)
    select p_user, new_id, x.lot, x.amount from unnest(t.lot_ids, t.amounts) x(lot, amount);
  end if;
  return ('created', bal, hld, entry, null)::ledger_outcome;
end $$;

-- Reserves credits for a hold: never beyond `available`; from lots in spend order. Like a debit, the common
-- case (the first lot covers it) is one statement after the lock, and names the lot on the hold; due lots
-- met on the way expire inline (general path).
create or replace function credits_hold(p_user text, p_id text, p_amount bigint, p_expires_in interval, p_key text,
                                        p_hash text, p_reason text, p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  prior holds;
  t record;
  ts timestamptz;
  lot bigint;
  hj jsonb;
  fast boolean;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, 0, null, null)::ledger_outcome;
  end if;
  ts := clock_timestamp();
  -- Conditions as plain expressions (an EXISTS makes plpgsql run a whole query for the IF): the hold probe
  -- only when something is held.
  fast := bal - hld >= p_amount;
  if fast and hld > 0 then
    fast := not exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts);
  end if;
  if fast then
    with first_lot as (
      select id, remaining - held as free, expires_at from credit_lots
      where user_id = p_user and not empty and remaining > held
      order by expires_at, id limit 1
    ), h as (
      insert into holds (user_id, id, amount, reason, metadata, idempotency_key, request_hash, created_at,
                         expires_at, lot_id)
      select p_user, p_id, p_amount, p_reason, coalesce(p_metadata, '{}'), p_key, p_hash, ts, ts + p_expires_in, f.id
      from first_lot f
      where f.free >= p_amount and (f.expires_at is null or f.expires_at > ts)
        and not exists (select 1 from holds k where k.user_id = p_user and k.idempotency_key = p_key)
      returning lot_id, credits_hold_json(holds) as j
    ), l as (
      update credit_lots set held = held + p_amount
      where user_id = p_user and id = (select h.lot_id from h)
    ), a as (
      update accounts set held = hld + p_amount, updated_at = ts
      where user_id = p_user and exists (select from h)
    )
    select h.j into hj from h;
    if hj is not null then
      return ('created', bal, hld + p_amount, null, hj)::ledger_outcome;
    end if;
  end if;
  if p_key is not null then
    select * into prior from holds where user_id = p_user and idempotency_key = p_key;
    if found then
      if prior.request_hash is not distinct from p_hash then
        return ('replayed', bal, hld, null, credits_hold_json(prior))::ledger_outcome;
      end if;
      return ('key_reused', bal, hld, null, credits_hold_json(prior))::ledger_outcome;
    end if;
  end if;
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
  end if;
  t := credits_take_lots(p_user, p_amount, ts, bal, hld, true);
  if t.taken = 0 then
    if t.bal <> bal then
      update accounts set balance = t.bal, updated_at = ts where user_id = p_user;
    end if;
    return ('insufficient', t.bal - hld, hld, null, null)::ledger_outcome;
  end if;
  bal := t.bal;
  if cardinality(t.lot_ids) = 1 then lot := t.lot_ids[1]; end if;
  hld := hld + p_amount;
  update accounts set balance = bal, held = hld, updated_at = ts where user_id = p_user;
  insert into holds (user_id, id, amount, reason, metadata, idempotency_key, request_hash, created_at, expires_at,
                     lot_id)
  values (p_user, p_id, p_amount, p_reason, coalesce(p_metadata, '{}'), p_key, p_hash, ts, ts + p_expires_in, lot)
  returning credits_hold_json(holds) into hj;
  if lot is null then
    insert into hold_lot_parts (user_id, hold_id, lot_id, amount)
    select p_user, p_id, x.lot, x.amount from unnest(t.lot_ids, t.amounts) x(lot, amount);
  end if;
  return ('created', bal, hld, null, hj)::ledger_outcome;
end $$;

-- Captures a hold: one debit entry of p_amount (default: all of it) with hold_id set, taken from the lots
-- the hold reserved (even a lot whose expiry passed during the hold: its credits were reserved while
-- valid); the rest is freed at once (and expires at once when its lot has). At most once: the same capture
-- again is a replay; another amount, or a hold no longer active, is a conflict. A hold on one lot, active,
-- not due, with no other hold of the account due, is captured in one statement.
create or replace function credits_capture(p_user text, p_hold text, p_amount bigint, p_reason text,
                                           p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  h holds;
  amt bigint;
  bal bigint;
  hld bigint;
  due boolean;
  ts timestamptz;
  lot_ids bigint[];
  amounts bigint[];
  new_entry ledger_entries;
  ej jsonb;
  hj jsonb;
  hamt bigint;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('not_found', 0, 0, null, null)::ledger_outcome;
  end if;
  ts := clock_timestamp();
  -- The common case in one statement: a hold on one lot, active and not due, with no other hold of the
  -- account due (none when accounts.held is this hold's amount: held is the sum of the active holds), and,
  -- for a part capture, its lot not past its expiry (the freed rest would expire at once). The hold row is
  -- updated first, with the entry's id taken from the entry's sequence, so the lot, the account and the entry
  -- follow from what it returns; when it returns nothing, the general path below reads the hold and answers.
  with u as (
    update holds hd
    set status = 'captured', captured_amount = coalesce(p_amount, hd.amount), captured_at = ts,
        entry_id = nextval('ledger_entries_id_seq')
    where hd.user_id = p_user and hd.id = p_hold and hd.status = 'active' and hd.lot_id is not null
      and hd.expires_at > ts and coalesce(p_amount, hd.amount) between 1 and hd.amount
      and (hld = hd.amount
           or not exists (select 1 from holds o where o.user_id = p_user and o.status = 'active' and o.expires_at <= ts))
      and (p_amount is null or p_amount = hd.amount
           or not exists (select 1 from credit_lots c where c.user_id = p_user and c.id = hd.lot_id and c.expires_at <= ts))
    returning hd.amount, hd.captured_amount, hd.lot_id, hd.reason, hd.metadata, hd.entry_id, credits_hold_json(hd) as j
  ), l as (
    -- Scalar subqueries, not a join with u: a join would scan all the user's lots and filter on the id.
    update credit_lots cl
    set held = cl.held - (select u.amount from u), remaining = cl.remaining - (select u.captured_amount from u)
    where cl.user_id = p_user and cl.id = (select u.lot_id from u)
  ), a as (
    update accounts ac set balance = bal - u.captured_amount, held = hld - u.amount, updated_at = ts
    from u where ac.user_id = p_user
  ), e as (
    insert into ledger_entries (id, user_id, type, amount, balance_after, source, reason, metadata, hold_id, lot_id,
                                created_at)
    overriding system value
    select u.entry_id, p_user, 'debit', -u.captured_amount, bal - u.captured_amount, 'api', coalesce(p_reason, u.reason),
           u.metadata || coalesce(p_metadata, '{}'), p_hold, u.lot_id, ts
    from u
    returning to_jsonb(ledger_entries) as j
  )
  select e.j, u.j, u.captured_amount, u.amount into ej, hj, amt, hamt from e, u;
  if ej is not null then
    return ('created', bal - amt, hld - hamt, ej, hj)::ledger_outcome;
  end if;
  select * into h from holds where user_id = p_user and id = p_hold;
  -- Lazy expiry: this hold too, when its time is up (then it is never captured).
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
    select * into h from holds where user_id = p_user and id = p_hold;
  end if;
  if h.id is null then
    return ('not_found', bal, hld, null, null)::ledger_outcome;
  end if;
  amt := coalesce(p_amount, h.amount);
  if h.status = 'captured' then
    if h.captured_amount = amt then
      select * into new_entry from ledger_entries where user_id = p_user and id = h.entry_id;
      return ('replayed', new_entry.balance_after, hld, to_jsonb(new_entry), credits_hold_json(h))::ledger_outcome;
    end if;
    return ('conflict', bal, hld, null, credits_hold_json(h))::ledger_outcome;
  end if;
  if h.status <> 'active' then
    return (case when h.status = 'expired' then 'expired' else 'conflict' end, bal, hld, null,
            credits_hold_json(h))::ledger_outcome;
  end if;
  if amt > h.amount then
    return ('too_much', bal, hld, null, credits_hold_json(h))::ledger_outcome;
  end if;
  -- hold_lots (the view) lists what the hold reserves, from its lot_id or its hold_lot_parts rows, while the
  -- hold is active: read it before the hold's status changes.
  due := amt < h.amount and exists (
    select 1 from hold_lots hl join credit_lots l on l.user_id = hl.user_id and l.id = hl.lot_id
    where hl.user_id = p_user and hl.hold_id = p_hold and l.expires_at <= ts);
  bal := bal - amt;
  hld := hld - h.amount;
  update accounts set balance = bal, held = hld, updated_at = ts where user_id = p_user;
  -- Take amt from the hold's lots in spend order, and free everything the hold reserved.
  with reserved as (
    select hl.lot_id, hl.amount,
           sum(hl.amount) over (order by l.expires_at, l.id rows unbounded preceding) - hl.amount as before
    from hold_lots hl join credit_lots l on l.user_id = hl.user_id and l.id = hl.lot_id
    where hl.user_id = p_user and hl.hold_id = p_hold
  ), took as (
    update credit_lots l
    set held = l.held - r.amount, remaining = l.remaining - greatest(0, least(r.amount, amt - r.before))
    from reserved r
    where l.user_id = p_user and l.id = r.lot_id
    returning l.id, greatest(0, least(r.amount, amt - r.before)) as taken
  )
  select array_agg(id), array_agg(taken) into lot_ids, amounts from took where taken > 0;
  insert into ledger_entries (user_id, type, amount, balance_after, source, reason, metadata, hold_id, lot_id,
                              created_at)
  values (p_user, 'debit', -amt, bal, 'api', coalesce(p_reason, h.reason), h.metadata || coalesce(p_metadata, '{}'),
          p_hold, case when cardinality(lot_ids) = 1 then lot_ids[1] end, ts)
  returning * into new_entry;
  if cardinality(lot_ids) > 1 then
    insert into debit_lots (user_id, entry_id, lot_id, amount)
    select p_user, new_entry.id, x.lot, x.amount from unnest(lot_ids, amounts) x(lot, amount);
  end if;
  if h.lot_id is null then
    delete from hold_lot_parts where user_id = p_user and hold_id = p_hold;
  end if;
  update holds set status = 'captured', captured_amount = amt, captured_at = ts, entry_id = new_entry.id
  where user_id = p_user and id = p_hold
  returning * into h;
  if due then
    -- The freed part of a lot already past its expiry expires now (after the capture's entry).
    perform credits_expire_due(p_user);
    select balance into bal from accounts where user_id = p_user;
  end if;
  return ('created', bal, hld, to_jsonb(new_entry), credits_hold_json(h))::ledger_outcome;
end $$;
