-- Every amount and balance stays within 2^53-1 (9007199254740991): the largest integer JSON clients and
-- JavaScript hold exactly. Beyond it a balance could be written but never read back (the service refuses to
-- round an int8), so a grant that would pass it is refused (409) instead of stored.
alter table accounts
  add constraint accounts_balance_safe check (balance <= 9007199254740991);
alter table ledger_entries
  add constraint ledger_entries_amount_safe check (amount between -9007199254740991 and 9007199254740991),
  add constraint ledger_entries_balance_after_safe check (balance_after <= 9007199254740991);
alter table credit_lots
  add constraint credit_lots_amount_safe check (amount <= 9007199254740991);
alter table credit_packages
  add constraint credit_packages_amounts_safe check (credits <= 9007199254740991 and price <= 9007199254740991);
alter table purchases
  add constraint purchases_amounts_safe check (
    credits <= 9007199254740991 and price <= 9007199254740991 and credits_reversed <= 9007199254740991
    and credits_disputed <= 9007199254740991);
