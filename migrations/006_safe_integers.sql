-- Every amount and balance stays within 2^53-1 (9007199254740991): the largest integer JSON clients and
-- JavaScript hold exactly. Beyond it a balance could be written but never read back (the service refuses to
-- round an int8), so a grant that would pass it is refused (409) instead of stored.
--
-- NOT VALID: enforced for every row written from now on, without scanning the existing rows under an
-- ACCESS EXCLUSIVE lock (the ledger is large and append-only; no stored row can be past 2^53-1 and still be
-- readable). `alter table ... validate constraint ...` checks the old rows later under a weaker lock.
alter table accounts
  add constraint accounts_balance_safe check (balance <= 9007199254740991) not valid;
alter table ledger_entries
  add constraint ledger_entries_amount_safe
    check (amount between -9007199254740991 and 9007199254740991) not valid,
  add constraint ledger_entries_balance_after_safe check (balance_after <= 9007199254740991) not valid;
alter table credit_lots
  add constraint credit_lots_amount_safe check (amount <= 9007199254740991) not valid;
alter table credit_packages
  add constraint credit_packages_amounts_safe
    check (credits <= 9007199254740991 and price <= 9007199254740991) not valid;
alter table purchases
  add constraint purchases_amounts_safe check (
    credits <= 9007199254740991 and price <= 9007199254740991 and credits_reversed <= 9007199254740991
    and credits_disputed <= 9007199254740991) not valid;
