-- Spending both ways: holds (reserve, then capture or release), debit reversals, and the lots each debit
-- took from. Invariants added, per user:
--   accounts.held = sum of the active holds' amounts <= accounts.balance (available = balance - held);
--   credit_lots.held = sum of what the active holds reserved from that lot <= credit_lots.remaining;
--   a debit's debit_reversal entries never add up to more than the debit.
-- Lock order everywhere: the account row, then its lots (and holds, which only change under the account lock).
--
-- Runs after 005 (which re-created 003's functions: every one of them is replaced below) and 006 (safe-integer
-- CHECKs, kept as they are). As in 006, constraints added to the existing tables are NOT VALID: enforced for
-- every row written from now on without scanning the ledger under an ACCESS EXCLUSIVE lock (the new columns
-- are 0 or null on every existing row, which satisfies them). New tables bound their amounts to 2^53-1 too.

alter table accounts add column held bigint not null default 0;
alter table accounts add constraint accounts_held_check check (held >= 0 and held <= balance) not valid;

-- spendable = remaining - held. Expiry never takes held credits: a due lot keeps its held part until the
-- hold is captured (spent) or freed (then it expires at once).
alter table credit_lots add column held bigint not null default 0;
alter table credit_lots add constraint credit_lots_held_check check (held >= 0 and held <= remaining) not valid;

alter table ledger_entries add column hold_id text;
alter table ledger_entries add column reverses_entry_id bigint;
-- The lot a debit took all its credits from, when it was one (the common case: one insert fewer per debit);
-- a debit that took from several lots has debit_lots rows instead.
alter table ledger_entries add column lot_id bigint;
alter table ledger_entries drop constraint ledger_entries_type_check;
alter table ledger_entries add constraint ledger_entries_type_check
  check (type in ('grant', 'debit', 'reversal', 'expiry', 'debit_reversal')) not valid;
alter table ledger_entries drop constraint ledger_entries_check;
alter table ledger_entries add constraint ledger_entries_amount_check
  check ((type = 'grant' and amount > 0) or (type in ('debit', 'expiry') and amount < 0)
    or (type = 'reversal' and amount <= 0)
    or (type = 'debit_reversal' and amount > 0 and reverses_entry_id is not null)) not valid;
alter table ledger_entries add constraint ledger_entries_reverses_fkey
  foreign key (user_id, reverses_entry_id) references ledger_entries (user_id, id) not valid;
create index ledger_entries_reversals on ledger_entries (user_id, reverses_entry_id)
  where reverses_entry_id is not null;

create table holds (
  user_id text not null references accounts (user_id),
  id text not null,
  -- Insertion order, for listing newest first with a keyset cursor (ids are random).
  seq bigint generated always as identity,
  amount bigint not null check (amount > 0 and amount <= 9007199254740991),
  captured_amount bigint not null default 0,
  status text not null default 'active' check (status in ('active', 'captured', 'released', 'expired')),
  reason text,
  metadata jsonb not null default '{}',
  idempotency_key text,
  request_hash text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  captured_at timestamptz,
  released_at timestamptz,
  entry_id bigint,
  primary key (user_id, id),
  unique (user_id, idempotency_key),
  -- entry_id is not a foreign key: one referencing ledger_entries would make TRUNCATE fail on the reference
  -- before the append-only trigger could refuse it with its own message.
  check ((status = 'captured') = (entry_id is not null)),
  check ((status = 'captured' and captured_amount between 1 and amount) or (status <> 'captured' and captured_amount = 0))
);
create index holds_user_seq on holds (user_id, seq);
-- Active holds by user and expiry: the lazy expiry's probe and (read in full: only active holds) the sweeper's
-- work list. One partial index, not two: every capture or release moves a hold out of it.
create index holds_active on holds (user_id, expires_at) where status = 'active';

-- What each active hold reserved from each lot (removed once the hold ends).
create table hold_lots (
  user_id text not null,
  hold_id text not null,
  lot_id bigint not null,
  amount bigint not null check (amount > 0 and amount <= 9007199254740991),
  -- No foreign keys: only the functions below write these rows, and a foreign key check locks the lot's row
  -- (FOR KEY SHARE) on every hold. ledger:verify checks that lots' held amounts match.
  primary key (user_id, hold_id, lot_id)
);

-- Which lots a debit (or capture) took from when it took from several, and how much of that has been given
-- back. A debit from one lot names it in ledger_entries.lot_id instead.
create table debit_lots (
  user_id text not null,
  entry_id bigint not null,
  lot_id bigint not null,
  amount bigint not null check (amount > 0 and amount <= 9007199254740991),
  reversed bigint not null default 0,
  primary key (user_id, entry_id, lot_id),
  check (reversed >= 0 and reversed <= amount)
);

-- Every reworked function answers with this: what happened, the balance, what holds reserve, and the entry
-- and hold written (or replayed). `outcome`: created | replayed | key_reused | insufficient | not_found |
-- conflict | expired.
create type ledger_outcome as (
  outcome text,
  balance bigint,
  held bigint,
  entry jsonb,
  hold jsonb
);

-- An entry as the API layer reads it: the row, as JSON.
create function credits_entry_json(e ledger_entries) returns jsonb language sql immutable as $$
  select to_jsonb(e)
$$;

create function credits_hold_json(h holds) returns jsonb language sql immutable as $$
  select to_jsonb(h) - 'seq' - 'request_hash' - 'idempotency_key'
$$;

-- Expires the spendable part (remaining - held) of every due lot of the user. The caller holds the account
-- row lock (every caller locks it first). Returns the credits expired.
create or replace function credits_expire_due(p_user text) returns bigint language plpgsql as $$
declare
  lot record;
  bal bigint;
  total bigint := 0;
  ts timestamptz := clock_timestamp();
begin
  select balance into bal from accounts where user_id = p_user for update;
  for lot in
    select id, remaining - held as free, source, purchase_id, expires_at from credit_lots
    where user_id = p_user and not empty and expires_at <= ts and remaining > held
    order by expires_at, id
  loop
    update credit_lots set remaining = held where user_id = p_user and id = lot.id;
    bal := bal - lot.free;
    total := total + lot.free;
    insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, metadata, created_at)
    values (p_user, 'expiry', -lot.free, bal, lot.source, lot.purchase_id, 'Credits expired',
            jsonb_build_object('lotId', lot.id::text, 'expiredAt', lot.expires_at), ts);
  end loop;
  if total > 0 then
    update accounts set balance = bal, updated_at = ts where user_id = p_user;
  end if;
  return total;
end $$;

-- Ends an active hold without spending it (status released or expired): frees what it reserved, then
-- expires at once the freed credits whose lot is past its expiry. Account row locked by the caller.
create function credits_free_hold(p_user text, p_hold text, p_status text, p_ts timestamptz)
returns holds language plpgsql as $$
declare
  h holds;
begin
  update credit_lots l set held = l.held - hl.amount
  from hold_lots hl
  where hl.user_id = p_user and hl.hold_id = p_hold and l.user_id = p_user and l.id = hl.lot_id;
  delete from hold_lots where user_id = p_user and hold_id = p_hold;
  update holds set status = p_status, released_at = p_ts
  where user_id = p_user and id = p_hold and status = 'active'
  returning * into h;
  update accounts set held = held - h.amount where user_id = p_user;
  perform credits_expire_due(p_user);
  return h;
end $$;

-- Lazy expiry of holds: every active hold of the user past expires_at becomes `expired`. Account row locked
-- by the caller (the sweeper locks it through credits_expire_holds_of). Returns how many.
create function credits_expire_holds(p_user text, p_ts timestamptz) returns integer language plpgsql as $$
declare
  hid text;
  n integer := 0;
begin
  for hid in
    select id from holds where user_id = p_user and status = 'active' and expires_at <= p_ts order by expires_at, id
  loop
    perform credits_free_hold(p_user, hid, 'expired', p_ts);
    n := n + 1;
  end loop;
  return n;
end $$;

-- The sweeper's entry point: locks the account, then expires its due holds.
create function credits_expire_holds_of(p_user text) returns integer language plpgsql as $$
begin
  perform 1 from accounts where user_id = p_user for update;
  if not found then return 0; end if;
  return credits_expire_holds(p_user, clock_timestamp());
end $$;

-- Brings an account up to date before an operation: due holds expire, then due lots. Account row locked.
create function credits_settle(p_user text, p_held bigint, p_ts timestamptz) returns void language plpgsql as $$
begin
  if p_held > 0 then
    perform credits_expire_holds(p_user, p_ts);
  end if;
  perform credits_expire_due(p_user);
end $$;

-- The one lot loop: walks the user's lots in spend order (soonest expiry first, then oldest; with
-- p_purchase_first, the given purchase's lots before all others) and takes p_amount of their spendable
-- credits (remaining - held), or, with p_reserve, reserves it (held += ...) for a hold. A due lot met on the
-- way has its spendable part expired (an expiry entry dated p_ts), so a debit need not settle first; due
-- lots sort first in spend order, so at the first lot that is not due the spendable balance is known, and
-- nothing is taken when it is short (taken = 0). Callers using p_purchase_first settle first (no due lots).
-- The account row is locked by the caller; bal is its balance, p_held what holds reserve.
create function credits_take_lots(p_user text, p_amount bigint, p_ts timestamptz, inout bal bigint, p_held bigint,
                                  p_reserve boolean default false, p_purchase text default null,
                                  p_purchase_first boolean default false,
                                  out taken bigint, out lot_ids bigint[], out amounts bigint[])
language plpgsql as $$
declare
  lot record;
  take bigint;
  left_to_take bigint := p_amount;
begin
  taken := 0;
  for lot in
    select id, remaining - held as free, expires_at, source, purchase_id from credit_lots
    where user_id = p_user and not empty
    order by case when p_purchase_first then purchase_id is not distinct from p_purchase end desc, expires_at, id
  loop
    continue when lot.free = 0;
    if lot.expires_at <= p_ts then
      update credit_lots set remaining = held where user_id = p_user and id = lot.id;
      bal := bal - lot.free;
      insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, metadata,
                                  created_at)
      values (p_user, 'expiry', -lot.free, bal, lot.source, lot.purchase_id, 'Credits expired',
              jsonb_build_object('lotId', lot.id::text, 'expiredAt', lot.expires_at), p_ts);
      continue;
    end if;
    exit when bal - p_held < p_amount;
    take := least(left_to_take, lot.free);
    if p_reserve then
      update credit_lots set held = held + take where user_id = p_user and id = lot.id;
    else
      update credit_lots set remaining = remaining - take where user_id = p_user and id = lot.id;
    end if;
    lot_ids := lot_ids || lot.id;
    amounts := amounts || take;
    left_to_take := left_to_take - take;
    exit when left_to_take = 0;
  end loop;
  if left_to_take > 0 and bal - p_held >= p_amount then
    raise exception 'credit lots of % do not cover the balance', p_user;
  end if;
  if left_to_take = 0 then taken := p_amount; end if;
end $$;

-- Spends credits: never beyond `available`, never an expired lot, soonest-expiring lots first, then the
-- oldest. The common case (no hold due, the first lot in spend order covers the debit and is not due) takes
-- one UPDATE of that lot and names it on the entry; anything else goes through the lot loop.
drop function credits_debit(text, bigint, text, text, text, jsonb, text);
create function credits_debit(p_user text, p_amount bigint, p_key text, p_hash text, p_reason text,
                              p_metadata jsonb, p_source text default 'api')
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  prior ledger_entries;
  t record;
  ts timestamptz;
  lot bigint;
  new_entry ledger_entries;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, 0, null, null)::ledger_outcome;
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
  -- Read once the lock is held: a debit that queued behind another must not be dated before it.
  ts := clock_timestamp();
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
  end if;
  if bal - hld >= p_amount then
    -- The first lot with spendable credits: due lots sort first, so when it is not due, none is.
    update credit_lots set remaining = remaining - p_amount
    where user_id = p_user
      and id = (select id from credit_lots where user_id = p_user and not empty and remaining > held
                order by expires_at, id limit 1)
      and remaining - held >= p_amount and (expires_at is null or expires_at > ts)
    returning id into lot;
  end if;
  if lot is null then
    t := credits_take_lots(p_user, p_amount, ts, bal, hld);
    if t.taken = 0 then
      if t.bal <> bal then
        update accounts set balance = t.bal, updated_at = ts where user_id = p_user;
      end if;
      return ('insufficient', t.bal - hld, hld, null, null)::ledger_outcome;
    end if;
    bal := t.bal;
    if cardinality(t.lot_ids) = 1 then lot := t.lot_ids[1]; end if;
  end if;
  bal := bal - p_amount;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key, request_hash,
                              metadata, lot_id, created_at)
  values (p_user, 'debit', -p_amount, bal, p_source, p_reason, p_key, p_hash, coalesce(p_metadata, '{}'), lot, ts)
  returning * into new_entry;
  if lot is null then
    insert into debit_lots (user_id, entry_id, lot_id, amount)
    select p_user, new_entry.id, x.lot, x.amount from unnest(t.lot_ids, t.amounts) x(lot, amount);
  end if;
  return ('created', bal, hld, to_jsonb(new_entry), null)::ledger_outcome;
end $$;

-- Debits of any accounts in one transaction: the service's group commit and the batch route. Each item is a
-- full credits_debit (its own entry, replay and 402), so the results are what the debits would give one by
-- one; the batch shares one commit (one WAL flush) and one round trip. Items run in user_id order, then in
-- the order given: every batch locks accounts in the same order, so batches that share accounts queue, never
-- deadlock, and one account's debits keep the order they arrived in. `n` is the item's 1-based position.
drop function credits_debit_many(jsonb);
create function credits_debit_many(p_items jsonb)
returns table (n bigint, outcome text, balance bigint, held bigint, entry jsonb) language plpgsql as $$
#variable_conflict use_column
declare
  item record;
  r ledger_outcome;
begin
  for item in
    select e.u, e.a, e.k, e.h, e.r, e.m, e.pos
    from rows from (jsonb_to_recordset(p_items) as (u text, a bigint, k text, h text, r text, m jsonb))
         with ordinality e(u, a, k, h, r, m, pos)
    order by e.u, e.pos
  loop
    r := credits_debit(item.u, item.a, item.k, item.h, item.r, item.m);
    n := item.pos;
    outcome := r.outcome;
    balance := r.balance;
    held := r.held;
    entry := r.entry;
    return next;
  end loop;
end $$;

-- Locks the account (creating it when asked), answers a replay of an idempotency key, and settles due holds
-- and lots. Returns ('locked', balance, held) when the caller should go on, holding the lock; anything else is
-- the caller's answer.
drop function credits_lock_account(text, boolean, text, text);
create function credits_lock_account(p_user text, p_create boolean, p_key text, p_hash text)
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  prior ledger_entries;
begin
  if p_create then
    insert into accounts (user_id) values (p_user) on conflict (user_id) do nothing;
  end if;
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, 0, null, null)::ledger_outcome;
  end if;
  if p_key is not null then
    select * into prior from ledger_entries where user_id = p_user and idempotency_key = p_key;
    if found then
      if prior.request_hash is not distinct from p_hash then
        return ('replayed', prior.balance_after, hld, to_jsonb(prior), null)::ledger_outcome;
      end if;
      return ('key_reused', bal, hld, to_jsonb(prior), null)::ledger_outcome;
    end if;
  end if;
  perform credits_settle(p_user, hld, clock_timestamp());
  select balance, held into bal, hld from accounts where user_id = p_user;
  return ('locked', bal, hld, null, null)::ledger_outcome;
end $$;

-- Adds credits as a new lot (expiring at p_expires_at, or never when null).
drop function credits_grant(text, bigint, text, text, text, text, jsonb, timestamptz);
create function credits_grant(p_user text, p_amount bigint, p_source text, p_purchase_id text, p_key text,
                              p_reason text, p_metadata jsonb, p_expires_at timestamptz)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  bal bigint;
  ts timestamptz;
  new_entry ledger_entries;
begin
  early := credits_lock_account(p_user, true, p_key, null);
  if early.outcome <> 'locked' then return early; end if;
  bal := early.balance + p_amount;
  ts := clock_timestamp();
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, created_at)
  values (p_user, 'grant', p_amount, bal, p_source, p_purchase_id, p_reason, p_key, coalesce(p_metadata, '{}'), ts)
  returning * into new_entry;
  insert into credit_lots (user_id, purchase_id, source, amount, remaining, expires_at, grant_entry_id, created_at)
  values (p_user, p_purchase_id, p_source, p_amount, p_amount, p_expires_at, new_entry.id, ts);
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  return ('created', bal, early.held, to_jsonb(new_entry), null)::ledger_outcome;
end $$;

-- Takes credits back (refund, dispute): only available ones (never what holds reserve), first from the
-- purchase's own lots, then from the others, never below zero; what it could not take is recorded as
-- metadata.uncollected.
drop function credits_clawback(text, bigint, text, text, text, text, jsonb);
create function credits_clawback(p_user text, p_amount bigint, p_source text, p_purchase_id text, p_key text,
                                 p_reason text, p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  bal bigint;
  taken bigint;
  t record;
  ts timestamptz;
  new_entry ledger_entries;
begin
  early := credits_lock_account(p_user, true, p_key, null);
  if early.outcome <> 'locked' then return early; end if;
  bal := early.balance;
  ts := clock_timestamp();
  taken := least(p_amount, bal - early.held);
  if taken > 0 then
    t := credits_take_lots(p_user, taken, ts, bal, early.held, false, p_purchase_id, true);
    if t.taken <> taken then
      raise exception 'credit lots of % do not cover the balance', p_user;
    end if;
  end if;
  bal := bal - taken;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, created_at)
  values (p_user, 'reversal', -taken, bal, p_source, p_purchase_id, p_reason, p_key,
          coalesce(p_metadata, '{}') || jsonb_build_object('requested', p_amount, 'uncollected', p_amount - taken), ts)
  returning * into new_entry;
  return ('created', bal, early.held, to_jsonb(new_entry), null)::ledger_outcome;
end $$;

-- Reserves credits for a hold: never beyond `available`; from lots in spend order. Like a debit, the common
-- case (the first lot covers it) is one UPDATE of that lot, and due lots met on the way expire inline.
create function credits_hold(p_user text, p_id text, p_amount bigint, p_expires_in interval, p_key text,
                             p_hash text, p_reason text, p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  prior holds;
  t record;
  ts timestamptz;
  lot bigint;
  h holds;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, 0, null, null)::ledger_outcome;
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
  ts := clock_timestamp();
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
  end if;
  if bal - hld >= p_amount then
    update credit_lots set held = held + p_amount
    where user_id = p_user
      and id = (select id from credit_lots where user_id = p_user and not empty and remaining > held
                order by expires_at, id limit 1)
      and remaining - held >= p_amount and (expires_at is null or expires_at > ts)
    returning id into lot;
  end if;
  if lot is null then
    t := credits_take_lots(p_user, p_amount, ts, bal, hld, true);
    if t.taken = 0 then
      if t.bal <> bal then
        update accounts set balance = t.bal, updated_at = ts where user_id = p_user;
      end if;
      return ('insufficient', t.bal - hld, hld, null, null)::ledger_outcome;
    end if;
    bal := t.bal;
  end if;
  hld := hld + p_amount;
  update accounts set balance = bal, held = hld, updated_at = ts where user_id = p_user;
  insert into holds (user_id, id, amount, reason, metadata, idempotency_key, request_hash, created_at, expires_at)
  values (p_user, p_id, p_amount, p_reason, coalesce(p_metadata, '{}'), p_key, p_hash, ts, ts + p_expires_in)
  returning * into h;
  if lot is not null then
    insert into hold_lots (user_id, hold_id, lot_id, amount) values (p_user, p_id, lot, p_amount);
  else
    insert into hold_lots (user_id, hold_id, lot_id, amount)
    select p_user, p_id, x.lot, x.amount from unnest(t.lot_ids, t.amounts) x(lot, amount);
  end if;
  return ('created', bal, hld, null, credits_hold_json(h))::ledger_outcome;
end $$;

-- Locks the account, settles it (a hold past expires_at becomes expired here) and reads the hold:
-- ('locked', balance, held, null, hold) to go on, or ('not_found', ...).
create function credits_lock_hold(p_user text, p_hold text, p_ts timestamptz)
returns ledger_outcome language plpgsql as $$
declare
  bal bigint;
  hld bigint;
  h holds;
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('not_found', 0, 0, null, null)::ledger_outcome;
  end if;
  perform credits_settle(p_user, hld, p_ts);
  select balance, held into bal, hld from accounts where user_id = p_user;
  select * into h from holds where user_id = p_user and id = p_hold;
  if not found then
    return ('not_found', bal, hld, null, null)::ledger_outcome;
  end if;
  return ('locked', bal, hld, null, credits_hold_json(h))::ledger_outcome;
end $$;

-- Captures a hold: one debit entry of p_amount (default: all of it) with hold_id set, taken from the lots
-- the hold reserved (even a lot whose expiry passed during the hold: its credits were reserved while
-- valid); the rest is freed at once (and expires at once when its lot has). At most once: the same capture
-- again is a replay; another amount, or a hold no longer active, is a conflict.
create function credits_capture(p_user text, p_hold text, p_amount bigint, p_reason text, p_metadata jsonb)
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
begin
  select balance, held into bal, hld from accounts where user_id = p_user for update;
  if not found then
    return ('not_found', 0, 0, null, null)::ledger_outcome;
  end if;
  ts := clock_timestamp();
  -- Lazy expiry: this hold too, when its time is up (then it is never captured).
  if hld > 0 and exists (select 1 from holds where user_id = p_user and status = 'active' and expires_at <= ts) then
    perform credits_expire_holds(p_user, ts);
    select balance, held into bal, hld from accounts where user_id = p_user;
  end if;
  select * into h from holds where user_id = p_user and id = p_hold;
  if not found then
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
  delete from hold_lots where user_id = p_user and hold_id = p_hold;
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

-- Releases a hold: frees what it reserved. Releasing a released hold answers it again (replayed); a captured
-- or expired hold is a conflict.
create function credits_release(p_user text, p_hold text)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  h holds;
  ts timestamptz := clock_timestamp();
  bal bigint;
  hld bigint;
begin
  early := credits_lock_hold(p_user, p_hold, ts);
  if early.outcome <> 'locked' then return early; end if;
  h := jsonb_populate_record(null::holds, early.hold);
  if h.status = 'released' then
    return ('replayed', early.balance, early.held, null, early.hold)::ledger_outcome;
  end if;
  if h.status <> 'active' then
    return ('conflict', early.balance, early.held, null, early.hold)::ledger_outcome;
  end if;
  h := credits_free_hold(p_user, p_hold, 'released', ts);
  select balance, held into bal, hld from accounts where user_id = p_user;
  return ('created', bal, hld, null, credits_hold_json(h))::ledger_outcome;
end $$;

-- Gives back up to what a debit took: a debit_reversal entry, the credits returned to the lots they came
-- from (latest-expiring first, so what is given back lasts longest), and an expiry entry at once for any
-- returned to a lot past its expiry. A debit written before lots were recorded (no lot_id, no debit_lots)
-- gets its credits back as a new lot that never expires. Never more than the debit in total: 'conflict' beyond it.
create function credits_reverse_debit(p_user text, p_entry bigint, p_amount bigint, p_key text, p_hash text,
                                      p_reason text, p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  debit ledger_entries;
  already bigint;
  amt bigint;
  left_to_give bigint;
  give bigint;
  dl record;
  bal bigint;
  ts timestamptz;
  new_entry ledger_entries;
  legacy boolean;
begin
  early := credits_lock_account(p_user, false, p_key, p_hash);
  if early.outcome = 'insufficient' then return ('not_found', 0, 0, null, null)::ledger_outcome; end if;
  if early.outcome <> 'locked' then return early; end if;
  select * into debit from ledger_entries where user_id = p_user and id = p_entry and type = 'debit';
  if not found then
    return ('not_found', early.balance, early.held, null, null)::ledger_outcome;
  end if;
  select coalesce(sum(amount), 0) into already from ledger_entries
  where user_id = p_user and reverses_entry_id = p_entry and type = 'debit_reversal';
  amt := coalesce(p_amount, -debit.amount - already);
  if amt <= 0 or amt > -debit.amount - already then
    return ('conflict', early.balance, early.held, to_jsonb(debit), null)::ledger_outcome;
  end if;
  ts := clock_timestamp();
  bal := early.balance + amt;
  insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key, request_hash,
                              metadata, reverses_entry_id, hold_id, created_at)
  values (p_user, 'debit_reversal', amt, bal, debit.source, p_reason, p_key, p_hash, coalesce(p_metadata, '{}'),
          p_entry, debit.hold_id, ts)
  returning * into new_entry;
  left_to_give := amt;
  legacy := debit.lot_id is null;
  if debit.lot_id is not null then
    -- Took everything from one lot: what is left to reverse is all in that lot.
    update credit_lots set remaining = remaining + amt where user_id = p_user and id = debit.lot_id;
    left_to_give := 0;
  end if;
  for dl in
    select d.lot_id, d.amount - d.reversed as open from debit_lots d
    join credit_lots l on l.user_id = d.user_id and l.id = d.lot_id
    where d.user_id = p_user and d.entry_id = p_entry and left_to_give > 0
    order by l.expires_at desc nulls first, l.id desc
  loop
    legacy := false;
    continue when dl.open = 0;
    give := least(left_to_give, dl.open);
    update debit_lots set reversed = reversed + give where user_id = p_user and entry_id = p_entry and lot_id = dl.lot_id;
    update credit_lots set remaining = remaining + give where user_id = p_user and id = dl.lot_id;
    left_to_give := left_to_give - give;
    exit when left_to_give = 0;
  end loop;
  if legacy then
    insert into credit_lots (user_id, source, amount, remaining, grant_entry_id, created_at)
    values (p_user, debit.source, amt, amt, new_entry.id, ts);
  elsif left_to_give > 0 then
    raise exception 'debit % of % took less from its lots than it debited', p_entry, p_user;
  end if;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  perform credits_expire_due(p_user);
  select balance, held into bal, early.held from accounts where user_id = p_user;
  return ('created', bal, early.held, to_jsonb(new_entry), null)::ledger_outcome;
end $$;

-- The balance as a read sees it: the cached balance less what is already due (lots past their expiry whose
-- expiry entry is not written yet, and what holds past their expiry would free onto such lots); held less
-- the holds past their expiry; and the credits that expire, summed per expiry time, soonest first, at most 10.
drop function credits_balance(text);
create function credits_balance(p_user text)
returns table (balance bigint, held bigint, updated_at timestamptz, expiring jsonb) language plpgsql stable as $$
#variable_conflict use_column
declare
  ts timestamptz := now();
  due bigint;
begin
  select a.balance, a.held, a.updated_at into balance, held, updated_at from accounts a where a.user_id = p_user;
  if not found then return; end if;
  expiring := '[]'::jsonb;
  if held > 0 then
    -- Holds past their expiry reserve nothing; what they reserved on lots past expiry is gone too.
    select coalesce(sum(h.amount), 0) into due from holds h
    where h.user_id = p_user and h.status = 'active' and h.expires_at <= ts;
    if due > 0 then
      held := held - due;
      select coalesce(sum(hl.amount), 0) into due from holds h
      join hold_lots hl on hl.user_id = h.user_id and hl.hold_id = h.id
      join credit_lots l on l.user_id = hl.user_id and l.id = hl.lot_id
      where h.user_id = p_user and h.status = 'active' and h.expires_at <= ts and l.expires_at <= ts;
      balance := balance - due;
    end if;
  end if;
  -- Most accounts hold no credits that expire: one index probe says so.
  if exists (select 1 from credit_lots l where l.user_id = p_user and not l.empty and l.expires_at is not null) then
    select coalesce(sum(l.remaining - l.held), 0) into due from credit_lots l
    where l.user_id = p_user and not l.empty and l.expires_at <= ts;
    balance := balance - due;
    select coalesce(jsonb_agg(jsonb_build_object('credits', s.credits, 'expiresAt', s.expires_at)
                              order by s.expires_at), '[]'::jsonb)
    into expiring
    from (select l.expires_at, sum(l.remaining)::bigint as credits from credit_lots l
          where l.user_id = p_user and not l.empty and l.expires_at > ts
          group by l.expires_at order by l.expires_at limit 10) s;
  end if;
  return next;
end $$;
