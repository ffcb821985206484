-- Indexes for the ledger filters, the all-accounts ledger and account search (CONTRACT section 15).
--
-- Ledger lists page newest first on (created_at, id). A filtered page must cost what an unfiltered one does, so
-- every list reads one index range per entry type and merges them (a Merge Append of at most five ordered
-- scans, each stopping after a page): `type` leads after the user, `created_at` bounds the range (?from=, ?to=,
-- the cursor), `id` breaks ties. The same two indexes serve the lists without a type filter (all five types).
--   * one account:   (user_id, type, created_at, id)
--   * all accounts:  (type, created_at, id)
-- Two more index inserts per entry; ledger_entries_user_time stays for `?at=` and balance history.
-- `if not exists`: on a large ledger, create these first with `create index concurrently` (same names and
-- columns), outside a transaction, and this migration then takes no lock that stops debits.
create index if not exists ledger_entries_user_type_time on ledger_entries (user_id, type, created_at, id);
create index if not exists ledger_entries_type_time on ledger_entries (type, created_at, id);

-- The lot an expiry entry emptied (metadata.lotId): which lots lost credits to expiry (a lot's status).
-- Partial: only expiry entries are in it.
create index if not exists ledger_entries_expiry_lot on ledger_entries (user_id, ((metadata ->> 'lotId')::bigint))
  where type = 'expiry';

-- Account search by user id prefix (`?prefix=`): byte order, whatever the database's collation, so
-- `like 'abc%'` is a range scan of this index, and the page order is the index's.
create index if not exists accounts_user_id_c on accounts ((user_id collate "C"));
