-- The ledger functions as 003_ledger.sql defines them today. 003 was edited three times after its first
-- commit (one debit loop, group commit, one replay rule); a database migrated before those edits kept the
-- first functions. The migrator accepts 003's earlier checksums (migrations/checksums.json, "superseded"),
-- and this file brings such a database to today's functions. On a database migrated with today's 003 it
-- changes nothing. From here on a function changes in a new numbered file, never in an applied one.

-- The first batch debit took one account; the group commit's takes any accounts (a new signature).
drop function if exists credits_debit_many(text, jsonb);

-- Writes an expiry entry for every lot of the user that is due. Takes the account row lock itself
-- (free when the caller already holds it): the sweeper calls it alone, and a function in a
-- `select ... for update` target list runs before that row lock is taken, on a stale balance.
create or replace function credits_expire_due(p_user text) returns bigint language plpgsql as $$
declare
  lot record;
  bal bigint;
  total bigint := 0;
  ts timestamptz := clock_timestamp();
begin
  select balance into bal from accounts where user_id = p_user for update;
  for lot in
    select id, remaining, source, purchase_id, expires_at from credit_lots
    where user_id = p_user and not empty and expires_at <= ts
    order by expires_at, id for update
  loop
    update credit_lots set remaining = 0 where user_id = p_user and id = lot.id;
    bal := bal - lot.remaining;
    total := total + lot.remaining;
    insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, metadata, created_at)
    values (p_user, 'expiry', -lot.remaining, bal, lot.source, lot.purchase_id, 'Credits expired',
            jsonb_build_object('lotId', lot.id::text, 'expiredAt', lot.expires_at), ts);
  end loop;
  if total > 0 then
    update accounts set balance = bal, updated_at = ts where user_id = p_user;
  end if;
  return total;
end $$;

-- The spendable balance: the cached balance less lots already past expiry whose expiry entry is not
-- written yet, and the credits that expire, summed per expiry time, soonest first, at most 10. No row when
-- the user has no account. A function so that its plans are cached per connection (a read is planned once).
create or replace function credits_balance(p_user text)
returns table (balance bigint, updated_at timestamptz, expiring jsonb) language plpgsql stable as $$
#variable_conflict use_column
declare
  ts timestamptz := now();
  due bigint;
begin
  select a.balance, a.updated_at into balance, updated_at from accounts a where a.user_id = p_user;
  if not found then return; end if;
  expiring := '[]'::jsonb;
  -- Most accounts hold no credits that expire: one index probe says so.
  if exists (select 1 from credit_lots l where l.user_id = p_user and not l.empty and l.expires_at is not null) then
    select coalesce(sum(l.remaining), 0) into due from credit_lots l
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

-- Locks the account (creating it when asked) and answers a replay of an idempotency key: the one place
-- the replay rule lives. Returns ('locked', balance, null) when the caller should go on, holding the lock;
-- anything else is the caller's answer. The lock order is always: account row, then its lots.
create or replace function credits_lock_account(p_user text, p_create boolean, p_key text, p_hash text)
returns ledger_result language plpgsql as $$
declare
  bal bigint;
  prior jsonb;
begin
  if p_create then
    insert into accounts (user_id) values (p_user) on conflict (user_id) do nothing;
  end if;
  select balance into bal from accounts where user_id = p_user for update;
  if not found then
    return ('insufficient', 0, null)::ledger_result;
  end if;
  if p_key is not null then
    select to_jsonb(l) into prior from ledger_entries l where user_id = p_user and idempotency_key = p_key;
    if found then
      -- A replay answers the first result again: the balance right after that entry, not today's.
      if prior->>'request_hash' is not distinct from p_hash then
        return ('replayed', (prior->>'balance_after')::bigint, prior)::ledger_result;
      end if;
      return ('key_reused', bal, prior)::ledger_result;
    end if;
  end if;
  return ('locked', bal, null)::ledger_result;
end $$;

-- Spends credits: never below zero, never an expired lot, soonest-expiring lots first, then the oldest.
-- The lots are read once, in spend order, and the due ones (they sort first) are expired on the way, as
-- credits_expire_due would: the hot path does not call it.
create or replace function credits_debit(p_user text, p_amount bigint, p_key text, p_hash text, p_reason text,
                              p_metadata jsonb, p_source text default 'api')
returns ledger_result language plpgsql as $$
declare
  early ledger_result;
  bal bigint;
  lot record;
  left_to_take bigint := p_amount;
  take bigint;
  expired bigint := 0;
  ts timestamptz;
  new_entry jsonb;
begin
  early := credits_lock_account(p_user, false, p_key, p_hash);
  if early.outcome <> 'locked' then return early; end if;
  bal := early.balance;
  -- Read once the lock is held: a debit that queued behind another must not be dated before it.
  ts := clock_timestamp();
  for lot in
    select id, remaining, expires_at, source, purchase_id from credit_lots
    where user_id = p_user and not empty
    order by expires_at, id for update
  loop
    if lot.expires_at <= ts then
      update credit_lots set remaining = 0 where user_id = p_user and id = lot.id;
      bal := bal - lot.remaining;
      expired := expired + lot.remaining;
      insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, metadata,
                                  created_at)
      values (p_user, 'expiry', -lot.remaining, bal, lot.source, lot.purchase_id, 'Credits expired',
              jsonb_build_object('lotId', lot.id::text, 'expiredAt', lot.expires_at), ts);
      continue;
    end if;
    -- The first lot that is not due: the spendable balance is known, and nothing is taken when it is short.
    exit when bal < p_amount;
    take := least(left_to_take, lot.remaining);
    update credit_lots set remaining = remaining - take where user_id = p_user and id = lot.id;
    left_to_take := left_to_take - take;
    exit when left_to_take = 0;
  end loop;
  if left_to_take > 0 then
    if bal < p_amount then
      if expired > 0 then
        update accounts set balance = bal, updated_at = ts where user_id = p_user;
      end if;
      return ('insufficient', bal, null)::ledger_result;
    end if;
    raise exception 'credit lots of % do not cover the balance', p_user;
  end if;
  bal := bal - p_amount;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, reason, idempotency_key, request_hash,
                              metadata, created_at)
  values (p_user, 'debit', -p_amount, bal, p_source, p_reason, p_key, p_hash, coalesce(p_metadata, '{}'), ts)
  returning to_jsonb(ledger_entries.*) into new_entry;
  return ('created', bal, new_entry)::ledger_result;
end $$;

-- Debits of any accounts in one transaction: the service's group commit. Each item is a full credits_debit
-- (its own entry, replay and 402), so the results are what the debits would give one by one; the batch
-- shares one commit (one WAL flush) and one round trip. Items run in user_id order, then in the order
-- given: every batch locks accounts in the same order, so batches that share accounts queue, never
-- deadlock, and one account's debits keep the order they arrived in. `n` is the item's 1-based position.
create or replace function credits_debit_many(p_items jsonb)
returns table (n bigint, outcome text, balance bigint, entry jsonb) language plpgsql as $$
#variable_conflict use_column
declare
  item record;
  r ledger_result;
begin
  for item in
    select e.value as v, e.n as pos from jsonb_array_elements(p_items) with ordinality e(value, n)
    order by e.value->>'user', e.n
  loop
    r := credits_debit(item.v->>'user', (item.v->>'amount')::bigint, item.v->>'key', item.v->>'hash',
                       item.v->>'reason', item.v->'metadata');
    n := item.pos;
    outcome := r.outcome;
    balance := r.balance;
    entry := r.entry;
    return next;
  end loop;
end $$;

-- Adds credits as a new lot (expiring at p_expires_at, or never when null).
create or replace function credits_grant(p_user text, p_amount bigint, p_source text, p_purchase_id text, p_key text,
                              p_reason text, p_metadata jsonb, p_expires_at timestamptz)
returns ledger_result language plpgsql as $$
declare
  early ledger_result;
  bal bigint;
  ts timestamptz;
  new_entry jsonb;
begin
  early := credits_lock_account(p_user, true, p_key, null);
  if early.outcome <> 'locked' then return early; end if;
  perform credits_expire_due(p_user);
  select balance + p_amount into bal from accounts where user_id = p_user;
  ts := clock_timestamp();
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, created_at)
  values (p_user, 'grant', p_amount, bal, p_source, p_purchase_id, p_reason, p_key, coalesce(p_metadata, '{}'), ts)
  returning to_jsonb(ledger_entries.*) into new_entry;
  insert into credit_lots (user_id, purchase_id, source, amount, remaining, expires_at, grant_entry_id, created_at)
  values (p_user, p_purchase_id, p_source, p_amount, p_amount, p_expires_at, (new_entry->>'id')::bigint, ts);
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  return ('created', bal, new_entry)::ledger_result;
end $$;

-- Takes credits back (refund, dispute): first from the purchase's own lots, then from the others,
-- never below zero; what it could not take is recorded as metadata.uncollected.
create or replace function credits_clawback(p_user text, p_amount bigint, p_source text, p_purchase_id text, p_key text,
                                 p_reason text, p_metadata jsonb)
returns ledger_result language plpgsql as $$
declare
  early ledger_result;
  bal bigint;
  lot record;
  taken bigint;
  left_to_take bigint;
  take bigint;
  ts timestamptz;
  new_entry jsonb;
begin
  early := credits_lock_account(p_user, true, p_key, null);
  if early.outcome <> 'locked' then return early; end if;
  perform credits_expire_due(p_user);
  select balance into bal from accounts where user_id = p_user;
  taken := least(p_amount, bal);
  left_to_take := taken;
  if left_to_take > 0 then
    for lot in
      select id, remaining from credit_lots where user_id = p_user and not empty
      order by (purchase_id is not distinct from p_purchase_id) desc, expires_at, id for update
    loop
      take := least(left_to_take, lot.remaining);
      update credit_lots set remaining = remaining - take where user_id = p_user and id = lot.id;
      left_to_take := left_to_take - take;
      exit when left_to_take = 0;
    end loop;
  end if;
  bal := bal - taken;
  ts := clock_timestamp();
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, created_at)
  values (p_user, 'reversal', -taken, bal, p_source, p_purchase_id, p_reason, p_key,
          coalesce(p_metadata, '{}') || jsonb_build_object('requested', p_amount, 'uncollected', p_amount - taken), ts)
  returning to_jsonb(ledger_entries.*) into new_entry;
  return ('created', bal, new_entry)::ledger_result;
end $$;
