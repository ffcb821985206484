// Purchases: reads, the lifecycle every provider's purchase goes through, and the dev purchase.
export { default as devPurchaseRoutes } from './dev-purchase.route.ts';
export type * from './purchase-actions.ts';
export * from './purchase-lifecycle.ts';
export * from './purchase-status.ts';
export { default as purchaseRoutes } from './purchases.route.ts';
export {
  findPurchase,
  findPurchaseByPaymentIntent,
  findPurchaseByProviderRef,
  insertPurchase,
  lockProviderRef,
  type PurchaseChanges,
  updatePurchase,
} from './purchases.repository.ts';
export * from './purchases.service.ts';
export type * from './purchases.tables.ts';
