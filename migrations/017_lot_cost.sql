-- Reports at cost (CONTRACT section 15): every lot knows what its purchase paid, and every movement of credits
-- out of a lot names the lot, so the credits report can date each movement and cost it.
--
-- * credit_lots.price / currency: the purchase's price (minor units) and currency, copied when the lot is
--   created (credits_grant; a later lot of the same purchase, which gives back clawed-back credits, is priced
--   pro rata). Nullable columns with no default: adding them rewrites nothing, and a debit's
--   update of `remaining` stays a HOT update (no index touches them). Existing lots are filled from their
--   purchases here; a lot with no purchase (a debit reversal of a debit older than lots) keeps null.
-- * Clawbacks (refunds, disputes) now name the lots they took from, as debits do: ledger_entries.lot_id when
--   one lot, debit_lots rows when several. Before this, a `reversal` entry recorded no lot at all, so its cost
--   could not be told. Debits, captures, expiries (metadata.lotId) and debit reversals (the debit's lots, in
--   the fixed order credits_reverse_debit gives them back) already did.

alter table credit_lots add column price bigint check (price >= 0 and price <= 9007199254740991);
alter table credit_lots add column currency text;
comment on column credit_lots.price is
  'What the purchase of this lot paid, in the currency''s minor units; null for a lot with no purchase.';

update credit_lots l
set price = case when l.id = (select min(c.id) from credit_lots c
                              where c.user_id = l.user_id and c.purchase_id = l.purchase_id)
                 then p.price else floor(p.price::numeric * l.amount / p.credits)::bigint end,
    currency = p.currency
from purchases p where p.id = l.purchase_id;

comment on table debit_lots is
  'Which lots a debit, capture or clawback (reversal entry) took from when it took from several, and how much '
  'of a debit has been given back. An entry that took from one lot names it in ledger_entries.lot_id instead.';

-- Adds credits as a new lot (expiring at p_expires_at, or never when null), priced as its purchase.
create or replace function credits_grant(p_user text, p_amount bigint, p_source text, p_purchase_id text, p_key text,
                                         p_reason text, p_metadata jsonb, p_expires_at timestamptz)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  bal bigint;
  ts timestamptz;
  new_entry ledger_entries;
  lot_price bigint;
  lot_currency text;
begin
  early := credits_lock_account(p_user, true, p_key, null);
  if early.outcome <> 'locked' then return early; end if;
  bal := early.balance + p_amount;
  ts := clock_timestamp();
  if p_purchase_id is not null then
    -- The purchase's first lot carries its price. A later grant of the same purchase gives back credits a
    -- clawback took (a dispute won, a refund reversed): it carries their pro-rata price, so a purchase's
    -- lots never add up to more than it was sold for, less what was clawed back.
    select case when exists (select 1 from credit_lots c where c.user_id = p_user and c.purchase_id = p_purchase_id)
                then floor(p.price::numeric * p_amount / p.credits)::bigint else p.price end,
           p.currency
    into lot_price, lot_currency from purchases p where p.id = p_purchase_id;
  end if;
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, created_at)
  values (p_user, 'grant', p_amount, bal, p_source, p_purchase_id, p_reason, p_key, coalesce(p_metadata, '{}'), ts)
  returning * into new_entry;
  insert into credit_lots (user_id, purchase_id, source, amount, remaining, expires_at, grant_entry_id, created_at,
                           price, currency)
  values (p_user, p_purchase_id, p_source, p_amount, p_amount, p_expires_at, new_entry.id, ts, lot_price,
          lot_currency);
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  return ('created', bal, early.held, to_jsonb(new_entry), null)::ledger_outcome;
end $$;

-- Takes credits back (refund, dispute): only available ones (never what holds reserve), first from the
-- purchase's own lots, then from the others, never below zero; what it could not take is recorded as
-- metadata.uncollected. The lots taken from are named: lot_id when one, debit_lots rows when several.
create or replace function credits_clawback(p_user text, p_amount bigint, p_source text, p_purchase_id text,
                                            p_key text, p_reason text, p_metadata jsonb)
returns ledger_outcome language plpgsql as $$
declare
  early ledger_outcome;
  bal bigint;
  taken bigint;
  t record;
  ts timestamptz;
  new_entry ledger_entries;
  lots bigint[];
  amts bigint[];
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
    lots := t.lot_ids;
    amts := t.amounts;
  end if;
  bal := bal - taken;
  update accounts set balance = bal, updated_at = ts where user_id = p_user;
  insert into ledger_entries (user_id, type, amount, balance_after, source, purchase_id, reason, idempotency_key,
                              metadata, lot_id, created_at)
  values (p_user, 'reversal', -taken, bal, p_source, p_purchase_id, p_reason, p_key,
          coalesce(p_metadata, '{}') || jsonb_build_object('requested', p_amount, 'uncollected', p_amount - taken),
          case when cardinality(lots) = 1 then lots[1] end, ts)
  returning * into new_entry;
  if cardinality(lots) > 1 then
    insert into debit_lots (user_id, entry_id, lot_id, amount)
    select p_user, new_entry.id, x.lot, x.amount from unnest(lots, amts) x(lot, amount);
  end if;
  return ('created', bal, early.held, to_jsonb(new_entry), null)::ledger_outcome;
end $$;
