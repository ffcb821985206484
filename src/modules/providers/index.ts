// Providers: incoming Stripe and RevenueCat webhooks, reconciliation and sync, and the inbox that stores every
// provider event once with its outcome.
export { default as providerEventRoutes } from './inbox/provider-events.route.ts';
export { createProviderInbox, type ProviderInbox } from './inbox/provider-inbox.service.ts';
export { createRevenuecatSync } from './revenuecat/revenuecat-sync.service.ts';
export { default as revenuecatSyncRoutes } from './revenuecat/revenuecat-sync.route.ts';
export { default as revenuecatWebhookRoutes } from './revenuecat/revenuecat-webhook.route.ts';
export { createRevenuecatHandler } from './revenuecat/revenuecat-handler.ts';
export { productKey } from './revenuecat/revenuecat-rules.ts';
export { createRevenuecatWebhookService } from './revenuecat/revenuecat-webhook.service.ts';
export { default as checkoutRoutes } from './stripe/checkout.route.ts';
export { createCheckoutService } from './stripe/checkout.service.ts';
export { createStripeClient } from './stripe/stripe.client.ts';
export { createStripeReconciler } from './stripe/stripe-reconcile.service.ts';
export { default as stripeWebhookRoutes } from './stripe/stripe-webhook.route.ts';
export { createStripeHandler } from './stripe/stripe-handler.ts';
export { createStripeWebhookService } from './stripe/stripe-webhook.service.ts';
export type * from './providers.tables.ts';
