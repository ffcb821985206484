-- Drops what nothing runs any more. Found by checking every function of the public schema against the
-- bodies of the functions that are live (called by the service's SQL in src/, or fired by a trigger, or
-- called by one of those) and against src/**:
--   credits_debit_many(jsonb)           the batched debit of 007; the group commit calls credits_ledger_many
--                                       (014) since then, and nothing calls this one.
--   credits_entry_json(ledger_entries)  added in 007 as a wrapper of to_jsonb(entry); every function calls
--                                       to_jsonb itself, and nothing ever called this one.
--   type ledger_result                  the result of 003/005's functions; since 007 every function answers
--                                       with ledger_outcome, and no function or column uses ledger_result.
-- `if exists`: a database may come from any of the earlier histories of these files.
drop function if exists credits_debit_many(jsonb);
drop function if exists credits_entry_json(ledger_entries);
drop type if exists ledger_result;
