// The ledger's public face: balances, debits, holds, reversals, batches and grants. It imports no other module.
export { default as accountRoutes } from './accounts.route.ts';
export { default as batchDebitRoutes } from './batch-debits.route.ts';
export { default as creditRoutes } from './credits.route.ts';
export { default as holdRoutes } from './holds.route.ts';
export {
  countReversals,
  type EntryJson,
  findEntryByIdempotencyKey,
  findInconsistentAccounts,
  type HoldJson,
  lastReversalOf,
} from './ledger.repository.ts';
export { checkRange, filteredEntries, type LedgerFilter } from './ledger-filters.ts';
export * from './ledger.service.ts';
export type * from './ledger.tables.ts';
