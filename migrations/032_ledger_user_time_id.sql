-- One account's entries in (created_at, id) order from one index (issue 19's growth scenario).
--
-- A page of one account's ledger with every type (no ?type=) read five per-type ranges of
-- ledger_entries_user_type_time and merged them. On an account holding most of one type's entries, the
-- planner took ledger_entries_type_time for that branch instead (its statistics said the account is that
-- type), filtering out every other account's newer entries: at 2,000,000 entries the first page ran at 0.25
-- of a fresh account's. Such a page is now one range of (user_id, created_at, id), which also ends the ties
-- that ledger_entries_user_time (user_id, created_at) left to a sort, for `?at=` and balance history too. It
-- replaces that index: the same number of index inserts per entry, 8 bytes wider.
-- `if not exists`: on a large ledger, create it first with `create index concurrently` (same name and columns)
-- outside a transaction; this migration then only drops the old one.
create index if not exists ledger_entries_user_time_id on ledger_entries (user_id, created_at, id);
drop index ledger_entries_user_time;
